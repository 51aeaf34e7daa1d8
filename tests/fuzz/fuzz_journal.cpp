// libFuzzer target: the scan journal reader (parse_journal), which `muspec scan --resume` runs
// on the file it finds beside the output. An input that starts with the journal magic
// "MUSPECJ1" is the whole journal; any other input is a list of 3-byte edits (a 16-bit offset,
// modulo the seed's size, and the byte to write there; a trailing odd byte truncates the seed
// to that fraction of its size) applied to a small valid journal built once at start-up, so even
// an empty corpus starts from a well-formed file. Expected failures are muspec::InputError (a
// bad magic or header). Every entry returned must name a matrix inside the scan, hold records
// that pass spectrum_record_problem, end at or before valid_bytes, and re-encode to the same
// bytes. Build and run: tests/fuzz/README.md.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"
#include "fuzz_common.h"
#include "scan/journal.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"

namespace {

using namespace muspec;
using namespace muspec_fuzz;  // finding, note, g_sink: fuzz_common.h

std::string seed_journal() {
  std::string bytes = encode_journal_header({"fingerprint", "stamp", "quantiles 0.5", 4});
  for (int k = 0; k < 3; ++k) {
    SpectrumRecord r;
    r.name = r.tensor = "w" + std::to_string(k);
    r.rows = 2, r.cols = 3, r.tensor_shape = {2, 3};
    r.sigma = {1.0, 2.0 + k};
    r.summary = summarize_spectrum(r.sigma, std::sqrt(1.0 + (2.0 + k) * (2.0 + k)), 0.0, {0.5});
    bytes += encode_journal_entry({k, {r}, {{"f", r.name, "why"}}});
  }
  return bytes;
}

std::string input_journal(const uint8_t* data, size_t size) {
  if (size >= 8 && std::memcmp(data, "MUSPECJ1", 8) == 0) return std::string(reinterpret_cast<const char*>(data), size);
  static const std::string seed = seed_journal();
  std::string bytes = seed;
  size_t i = 0;
  for (; i + 3 <= size; i += 3) bytes[(data[i] | data[i + 1] << 8) % bytes.size()] = static_cast<char>(data[i + 2]);
  if (i < size) bytes.resize(bytes.size() * data[i] / 256);
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = input_journal(data, size);
  try {
    const JournalContents j = parse_journal(bytes, "fuzz.journal");
    if (j.valid_bytes > bytes.size()) finding("valid_bytes is past the end of the journal");
    size_t entry_bytes = 0;
    for (const JournalEntry& e : j.entries) {
      if (e.matrix < 0 || e.matrix >= j.header.matrices) finding("an entry names a matrix outside the scan");
      for (const SpectrumRecord& r : e.records)
        if (const std::string why = spectrum_record_problem(r); !why.empty()) finding("a record breaks the store's rules: " + why);
      entry_bytes += encode_journal_entry(e).size();
    }
    if (encode_journal_header(j.header).size() + entry_bytes != j.valid_bytes)
      finding("the entries do not re-encode to the valid_bytes they were read from");
    g_sink = j.entries.size();
  } catch (const InputError& e) {
    note(std::string("parse_journal: ") + e.what());
  } catch (const std::exception& e) {
    finding(std::string("parse_journal threw something other than muspec::InputError: ") + e.what());
  }
  return 0;
}
