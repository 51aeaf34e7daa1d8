// libFuzzer target: the spectra store reader (read_spectra_h5), which fit, recommend, plan and
// ns eval run on spectra.h5 files they did not write. An input that starts with the HDF5
// signature is used as the whole file; any other input is a list of edits applied to a small
// valid store built once at start-up (3 bytes each: a 16-bit offset, modulo the store's size,
// and the byte to write there; a trailing odd byte truncates the store to that fraction of its
// size), so even an empty corpus starts from a well-formed file. The result is written to a
// scratch file and read. Expected failures are muspec::Error; a crash, sanitizer report, other
// exception or hang is a finding. libhdf5 itself runs in a child process inside the reader
// (store/isolated_read.h), which sends the records back: set MUSPEC_H5_ISOLATION=off to fuzz
// libhdf5 directly (it crashes on some inputs; see docs/reliability.md). A file the child read
// is read again here with isolation off, for two reasons: it must give the same records, bit for
// bit (the transport's oracle), and the coverage libFuzzer steers by is this process's only (the
// child's is lost with it), so without that read the fuzzer would be blind to libhdf5's paths.
// Build and run: tests/fuzz/README.md.
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_common.h"
#include "spectra/record_codec.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"

namespace {

using namespace muspec;
using namespace muspec_fuzz;  // finding, note, temp_path, write_file: fuzz_common.h

/// Every libhdf5 call in this process runs inside one of these: the comparison reads below, and
/// the seed store's write. libhdf5 keeps global free lists; blocks allocated outside an ignored
/// region and later dropped during an ignored read of a malformed file were reported as leaks
/// (seen after 1,133 inputs, not replayable alone). The reader's own code in this process (the
/// receiving side) allocates outside these regions and stays checked.
struct IgnoreLeaks {
  IgnoreLeaks() { __lsan_disable(); }
  ~IgnoreLeaks() { __lsan_enable(); }
};

SpectrumRecord seed_record(const std::string& name, std::vector<double> sigma) {
  SpectrumRecord r;
  r.name = r.tensor = r.parameter = name;
  r.file = "model.safetensors";
  r.rows = r.cols = static_cast<int64_t>(sigma.size());
  r.tensor_shape = {r.rows, r.cols};
  r.dtype = "BF16";
  r.transform = "none";
  r.method = "svd";
  r.device = "cpu";
  r.kind = "weights";
  r.run = "run";
  r.floor = 1e-12;
  double frob2 = 0;
  for (double s : sigma) frob2 += s * s;
  r.summary = summarize_spectrum(sigma, std::sqrt(frob2), r.floor, {0.05, 0.5, 0.95});
  r.sigma = std::move(sigma);
  return r;
}

/// The bytes of a small valid store: two analysed records and one that was not analysed; its
/// /summary is marked complete, so the reader takes the column path (store/summary_read.h).
const std::string& seed_store() {
  static const std::string bytes = [] {
    SpectraFile f;
    f.attributes = {{"muspec_version", "fuzz"}, {"quantiles", "[0.05,0.5,0.95]"}};
    f.records = {seed_record("layers.0.w", {0.25, 1.0, 2.0}), seed_record("layers.1.w", {0.5, 4.0})};
    // A slice of a stack, stored transposed: the /summary read parses tensor_shape and the bools.
    f.records[1].slice = 1, f.records[1].tensor_shape = {3, 2, 2}, f.records[1].transposed = true;
    SpectrumRecord nan = seed_record("layers.2.w", {1.0, 2.0, 3.0});
    nan.sigma.clear();  // not analysed: NaN/Inf entries
    nan.nonfinite = 2;
    f.records.push_back(nan);
    const std::string path = temp_path(".seed.h5");
    {
      IgnoreLeaks ignore;
      write_spectra_h5(path, f);
    }
    FILE* in = std::fopen(path.c_str(), "rb");
    std::string s;
    char buf[4096];
    for (size_t n; in && (n = std::fread(buf, 1, sizeof buf, in)) > 0;) s.append(buf, n);
    if (in) std::fclose(in);
    if (s.empty()) finding("cannot build the seed store");
    return s;
  }();
  return bytes;
}

/// Every field, bit for bit (doubles by their bit patterns).
std::string encoded(const SpectraFile& f) {
  ByteWriter w;
  for (const auto& [k, v] : f.attributes) w.str(k), w.str(v);
  w.i64s(f.scan_order);
  for (const auto& r : f.records) put_spectrum_record(w, r, LayerMetricsCoding::Included);
  return w.bytes();
}

/// The same file read in this process: the records must be the same. What libhdf5 keeps on its
/// failure paths (a failed /summary column read before the per-record fallback keeps the strings
/// it had converted) is not muspec's: muspec runs this read only in the child, so the leak
/// checker ignores what this read allocates (IgnoreLeaks above).
void check_in_process(const std::string& path, const SpectraFile& isolated, const SpectraReadOptions& options) {
  IgnoreLeaks ignore;
  ::setenv("MUSPEC_H5_ISOLATION", "off", 1);
  try {
    const SpectraFile direct = read_spectra_h5(path, options);
    if (encoded(direct) != encoded(isolated)) finding("the isolated read and an in-process read give different records");
  } catch (const Error& e) {
    finding(std::string("the isolated read succeeded, an in-process read failed: ") + e.what());
  }
  ::unsetenv("MUSPEC_H5_ISOLATION");
}

std::string mutant(const uint8_t* data, size_t size) {
  std::string s = seed_store();
  size_t i = 0;
  for (; i + 3 <= size; i += 3) s[(static_cast<size_t>(data[i]) | static_cast<size_t>(data[i + 1]) << 8) % s.size()] = static_cast<char>(data[i + 2]);
  if (i < size) s.resize(s.size() * data[i] / 256);
  return s;
}

}  // namespace

// Some inputs make libhdf5 loop: the reader kills its child at MUSPEC_H5_READ_TIMEOUT, which
// must come well inside libFuzzer's -timeout (10 s in tools/fuzz.sh) for two reads per input.
// The reader's forked child inherits libFuzzer's death callback: a sanitizer report inside
// libhdf5 there (the crashes the child exists to contain) would write a crash artifact for an
// input the reader handled. Children of this process report to their parent only.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("MUSPEC_H5_READ_TIMEOUT", "2", 0);
  ::pthread_atfork(nullptr, nullptr, [] { __sanitizer_set_death_callback(nullptr); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool whole = size >= 8 && std::memcmp(data, "\x89HDF\r\n\x1a\n", 8) == 0;
  const std::string bytes = whole ? std::string(reinterpret_cast<const char*>(data), size) : mutant(data, size);
  const std::string& path = temp_path(".h5");
  write_file(path, bytes.data(), bytes.size());
  try {
    const SpectraFile f = read_spectra_h5(path);
    for (const auto& r : f.records)
      if (!spectrum_record_problem(r).empty()) finding("the reader returned a record that breaks the store's rules: " + r.name);
    g_sink = f.records.size() + f.attributes.size();
    check_in_process(path, f, {});
  } catch (const Error& e) {
    note(e.what());
  }
  try {  // summaries only (what fit reads): the /summary columns without sigma
    SpectraReadOptions summaries;
    summaries.sigma = false;
    const SpectraFile f = read_spectra_h5(path, summaries);
    for (const auto& r : f.records)
      if (!r.sigma.empty() && !spectrum_record_problem(r).empty()) finding("a summaries-only read returned a bad record: " + r.name);
    g_sink += f.records.size();
    check_in_process(path, f, summaries);
  } catch (const Error& e) {
    note(e.what());
  }
  return 0;
}
