// libFuzzer target: torch.save files (zip and legacy formats) through TorchFile::open, then
// every tensor loaded and every 2-D float slice converted to dense, and the saved object
// walked. Expected failures are muspec::Error and pickle::PickleError; anything else (crash,
// sanitizer report, other exception, hang, broken invariant) is a finding.
// Build and run: tests/fuzz/README.md.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/pickle.h"
#include "io/tensor_source.h"
#include "io/torch_file.h"
#include "fuzz_common.h"

namespace {

using namespace muspec;

using namespace muspec_fuzz;  // finding, note, temp_path, write_file, touch_*: fuzz_common.h


}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = temp_path(".pt");
  write_file(path, data, size);
  try {
    const auto f = TorchFile::open(path);
    g_sink = walk(f->root()) + f->format().size();
    touch_source(*f);
  } catch (const Error& e) {
    note(e.what());
  } catch (const pickle::PickleError& e) {
    note(e.what());
  }
  return 0;
}
