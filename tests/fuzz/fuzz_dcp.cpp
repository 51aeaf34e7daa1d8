// libFuzzer target: PyTorch Distributed Checkpoint metadata. The input is parsed in memory by
// parse_dcp_metadata (the restricted pickle reader with the DCP allow-list, then the field
// checks), then written as `.metadata` into a scratch directory beside two fixed shard files
// and opened with DcpCheckpoint::open (layout, file bounds, chunk coverage), and every entry of
// at most 64 MiB is loaded (chunk reading and assembly). Expected failures are muspec::Error;
// anything else (crash, sanitizer report, other exception, hang, broken invariant) is a finding.
// Build and run: tests/fuzz/README.md.
#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/dcp.h"
#include "io/dcp_metadata.h"
#include "fuzz_common.h"

namespace {

using namespace muspec;
using namespace muspec_fuzz;

/// A scratch checkpoint directory with two shard files: zeros and a few "PK" bytes.
const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string d = temp_path(".dcp");
    ::mkdir(d.c_str(), 0700);
    const std::string zeros(4096, '\0'), zipish = "PK\x03\x04" + std::string(252, 'x');
    write_file(d + "/__0_0.distcp", zeros.data(), zeros.size());
    write_file(d + "/__1_0.distcp", zipish.data(), zipish.size());
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const DcpMetadata md = parse_dcp_metadata(data, size, "fuzz.metadata");
    for (const auto& t : md.tensors)
      for (const auto& c : t.chunks)
        if (c.offsets.size() != t.shape.size() || c.sizes.size() != t.shape.size()) finding("chunk rank differs from the tensor's");
  } catch (const Error& e) {
    note(e.what());
    return 0;
  }
  const std::string meta = scratch_dir() + "/.metadata";
  write_file(meta, data, size);
  try {
    const auto ck = DcpCheckpoint::open(meta);
    for (size_t i = 0; i < ck->entries().size(); ++i) {
      if (ck->entries()[i].nbytes > (uint64_t{1} << 26)) continue;
      try {
        touch_view(ck->load(i).view, ck->entries()[i]);
      } catch (const Error& e) {
        note(e.what());
      }
    }
  } catch (const Error& e) {
    note(e.what());
  }
  return 0;
}
