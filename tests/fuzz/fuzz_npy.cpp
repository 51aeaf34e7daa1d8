// libFuzzer target: NumPy .npy and .npz files. The .npy header parser, size check and view are
// run on the input in memory (so ASan sees any overread exactly), then the input is written to
// a file and opened with open_npz (when it starts with a ZIP signature) or open_npy; every
// tensor is loaded, its bytes read and 2-D float slices converted. Expected failures are
// muspec::Error; anything else (crash, sanitizer report, other exception, hang, broken
// invariant) is a finding. Build and run: tests/fuzz/README.md.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/npy.h"
#include "io/npz.h"
#include "io/pickle.h"
#include "io/tensor_source.h"
#include "io/zip.h"
#include "fuzz_common.h"

namespace {

using namespace muspec;

using namespace muspec_fuzz;  // finding, note, temp_path, write_file, touch_*: fuzz_common.h

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. In memory: header, size check, view.
  try {
    const NpyHeader h = parse_npy_header(data, size, "mem.npy", "x");
    if (h.data_offset > size) finding("data_offset past the input");
    const uint64_t n = size - h.data_offset;
    g_sink = h.descr.size() + h.unsupported.size() + h.item_size;
    check_npy_data_size(h, n, "mem.npy", "x");
    const TensorEntry e = npy_entry(h, "x", "mem.npy", n);
    const TensorView v = npy_view(h, data + h.data_offset, n, "mem.npy", "x");
    if (v.reachable_bytes > n) finding("view reaches past the input");
    touch_view(v, e);
  } catch (const Error& e) {
    note(e.what());
  }
  // 2. As a file: .npz when it starts like a ZIP, .npy otherwise.
  const bool zip = has_zip_magic(data, size);
  const std::string& path = temp_path(zip ? ".npz" : ".npy");
  write_file(path, data, size);
  try {
    touch_source(*(zip ? open_npz(path) : open_npy(path)));
  } catch (const Error& e) {
    note(e.what());
  }
  return 0;
}
