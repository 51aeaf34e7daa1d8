// libFuzzer target: DeepSpeed ZeRO checkpoints. Two halves, chosen by the first byte:
//  even: the layout arithmetic (io/deepspeed_layout.h) on lengths decoded from the input; every
//        plan without a problem must cover its parameter exactly once with pieces inside the
//        stored tensors (an invariant, checked here), whatever the lengths claim;
//  odd:  a real ZeRO-2 checkpoint (tests/fixtures/deepspeed/zero2_adamw_w3, copied to a scratch
//        directory once) with one file replaced by the input: byte 1 picks the model-states
//        file or a rank's optimizer-state file. The checkpoint is opened with
//        open_deepspeed_checkpoint and every tensor loaded and touched.
// Expected failures are muspec::Error and pickle::PickleError. Build and run: README.md here.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "io/deepspeed.h"
#include "io/deepspeed_layout.h"

namespace {

using namespace muspec_fuzz;
namespace ds = muspec::deepspeed;
namespace fs = std::filesystem;

/// Reads small numbers off the input.
struct Bytes {
  const uint8_t* p;
  size_t n, at = 0;
  int next(int mod) { return at < n ? p[at++] % mod : 0; }
};

/// Each plan without a problem covers [0, numel) once, with every piece inside its tensor.
void check_plans(const std::vector<ds::ParamShape>& params, const std::vector<ds::ParamPlan>& plans,
                 const ds::FlatLengths& stored) {
  if (plans.size() != params.size()) finding("one plan per parameter expected");
  for (size_t i = 0; i < plans.size(); ++i) {
    if (!plans[i].problem.empty()) continue;
    std::vector<int> hit(static_cast<size_t>(params[i].numel), 0);
    for (const auto& p : plans[i].pieces) {
      if (p.rank >= stored.size() || p.group >= stored[p.rank].size()) finding("piece names a tensor that does not exist");
      const int64_t len = stored[p.rank][p.group];
      if (p.length <= 0 || p.start < 0 || p.start + p.length > len) finding("piece outside its stored tensor");
      if (p.at < 0 || p.at + p.length > params[i].numel) finding("piece outside its parameter");
      for (int64_t k = 0; k < p.length; ++k) ++hit[static_cast<size_t>(p.at + k)];
    }
    for (int h : hit)
      if (h != 1) finding("a parameter element covered " + std::to_string(h) + " times");
  }
}

void fuzz_layout(Bytes in) {
  const int world = 1 + in.next(5), groups = 1 + in.next(3), count = in.next(7);
  std::vector<ds::ParamShape> params;
  for (int i = 0; i < count; ++i)
    params.push_back({"p" + std::to_string(i), {0}, in.next(20), static_cast<size_t>(in.next(groups))});
  auto lengths = [&](int gs) {
    ds::FlatLengths l(static_cast<size_t>(world), std::vector<int64_t>(static_cast<size_t>(gs)));
    for (auto& r : l)
      for (auto& x : r) x = in.next(40) - 1;  // kAbsent included
    return l;
  };
  const ds::FlatLengths a = lengths(groups), b = lengths(groups), sub = lengths(1 + in.next(4));
  check_plans(params, ds::plan_zero12(params, a, world), a);
  check_plans(params, ds::plan_zero12_momentum(params, b, a, world), b);
  for (auto& p : params) p.group = 0;  // ZeRO-3 places by order, not by group
  check_plans(params, ds::plan_zero3(params, sub, sub, world), sub);
  g_sink = ds::zero3_first_group(params, sub, world).size();
}

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

const std::vector<std::string> kFiles = {"mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_optim_states.pt",
                                         "zero_pp_rank_1_mp_rank_00_optim_states.pt", "zero_pp_rank_2_mp_rank_00_optim_states.pt"};

/// The scratch copy of the fixture's tag directory; the original bytes of each file.
const fs::path& scratch_checkpoint(std::vector<std::string>& originals) {
  static fs::path dir;
  static std::vector<std::string> saved;
  if (dir.empty()) {
    dir = fs::path(temp_path(".ds")).concat("-dir") / "global_step4";
    fs::create_directories(dir);
    const fs::path src = fs::path(MUSPEC_SOURCE_DIR) / "tests/fixtures/deepspeed/zero2_adamw_w3/global_step4";
    for (const auto& f : kFiles) {
      saved.push_back(read_all(src / f));
      write_file((dir / f).string(), saved.back().data(), saved.back().size());
    }
    std::atexit([] { std::error_code ec; fs::remove_all(dir.parent_path(), ec); });
  }
  originals = saved;
  return dir;
}

void fuzz_checkpoint(const uint8_t* data, size_t size) {
  std::vector<std::string> originals;
  const fs::path& dir = scratch_checkpoint(originals);
  const size_t which = size > 1 ? data[1] % kFiles.size() : 0;
  const fs::path target = dir / kFiles[which];
  write_file(target.string(), size > 2 ? data + 2 : data, size > 2 ? size - 2 : 0);
  try {
    const auto src = open_deepspeed_checkpoint(dir.string());
    touch_source(*src);
  } catch (const Error& e) {
    note(e.what());
  } catch (const pickle::PickleError& e) {
    note(e.what());
  }
  write_file(target.string(), originals[which].data(), originals[which].size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0) fuzz_layout(Bytes{data + 1, size - 1});
  else fuzz_checkpoint(data, size);
  return 0;
}
