// libFuzzer target: what a scan reads from a run directory before any tensor, all of it written
// by training code or by hand and so untrusted: muspec-run.json (run manifest), trainer_state.json
// (HF Trainer's step), config.json (model config), a sharded `*.safetensors.index.json` (which
// files discovery lists) and a --manifest sweep file. The input is written as each of them in
// turn in a scratch run directory holding one valid tensor file; discovery and the checkpoint
// context then read the tree. Expected failures are muspec::Error; a crash, a sanitizer report,
// another exception type or a hang is a finding. Build and run: tests/fuzz/README.md.
#include <unistd.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "fuzz_common.h"
#include "io/discover.h"
#include "scan/checkpoint_context.h"

namespace {

using namespace muspec;
using namespace muspec_fuzz;  // finding, note, write_file: fuzz_common.h
namespace fs = std::filesystem;

/// run/checkpoint-10/model.safetensors (one valid F32 [1, 1] tensor), made once per process.
const fs::path& run_dir() {
  static const fs::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    const fs::path d = fs::path(tmp ? tmp : "/tmp") / ("muspec-fuzz-discover-" + std::to_string(getpid())) / "run";
    fs::create_directories(d / "checkpoint-10");
    const std::string header = R"({"w":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}})";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    bytes += header + std::string(4, '\0');
    write_file((d / "checkpoint-10" / "model.safetensors").string(), bytes.data(), bytes.size());
    return d;
  }();
  return dir;
}

void read_tree(const fs::path& planted) {
  try {
    const DiscoveredFiles found = discover_tensor_files({run_dir().string()});
    for (const std::string& f : found.files) {
      const CheckpointContext c = context_of(f, {});
      if (c.step < -1) finding("negative step from " + planted.string());
    }
  } catch (const Error& e) {
    note(planted.filename().string() + ": " + e.what());
  } catch (const std::exception& e) {
    finding(planted.string() + ": threw something other than muspec::Error: " + e.what());
  }
  fs::remove(planted);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& run = run_dir();
  for (const fs::path& p : {run / "muspec-run.json", run / "checkpoint-10" / "trainer_state.json",
                            run / "checkpoint-10" / "config.json", run / "checkpoint-10" / "model.safetensors.index.json"}) {
    write_file(p.string(), data, size);
    read_tree(p);
  }
  const fs::path sweep = run.parent_path() / "sweep.json";
  write_file(sweep.string(), data, size);
  try {
    read_sweep_manifest(sweep.string());
  } catch (const Error& e) {
    note(std::string("sweep: ") + e.what());
  } catch (const std::exception& e) {
    finding(std::string("read_sweep_manifest threw something other than muspec::Error: ") + e.what());
  }
  return 0;
}
