// libFuzzer target: what the isolated store reader's child sends back (lib/store/isolated_read.h
// and store_transport.h): the frame parser, fed the bytes in pieces of input-chosen sizes, and
// the SpectraFileReceiver behind it. The child ran libhdf5 on a crafted file, so this process
// treats its bytes as untrusted. An input whose first byte is 0xff is the stream itself (after a
// second byte: bit 0 = summaries-only read, the rest seeds the piece sizes); any other input is
// a list of 3-byte edits (a 16-bit offset, modulo the seed's size, and the byte to write there; a
// trailing odd byte truncates the seed to that fraction of its size) applied to the frames of a
// small valid store built once at start-up. Expected failures are muspec::InputError. Every file
// returned must hold records that pass read_record_problem and re-encode to the messages they
// were read from. Build and run: tests/fuzz/README.md.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_common.h"
#include "spectra/layer_metrics.h"
#include "spectra/summary.h"
#include "store/isolated_read.h"
#include "store/store_transport.h"

namespace {

using namespace muspec;
using namespace muspec_fuzz;  // finding, note, g_sink: fuzz_common.h

SpectrumRecord seed_record(const std::string& name, std::vector<double> sigma) {
  SpectrumRecord r;
  r.name = r.tensor = r.parameter = name;
  r.rows = static_cast<int64_t>(sigma.size()) + 1, r.cols = static_cast<int64_t>(sigma.size());
  r.tensor_shape = {r.rows, r.cols};
  r.dtype = "BF16", r.transform = "none", r.method = "gram", r.device = "cpu", r.floor = 1e-3;
  double frob2 = 0;
  for (double s : sigma) frob2 += s * s;
  r.summary = summarize_spectrum(sigma, std::sqrt(frob2), r.floor, {0.25, 0.5});
  r.layer_metrics = compute_layer_metrics(sigma, r.rows, r.cols, r.floor);
  r.sigma = std::move(sigma);
  return r;
}

std::vector<std::string> seed_messages() {
  SpectraFile f;
  f.attributes = {{"muspec_version", "fuzz"}, {"quantiles", "[0.25,0.5]"}};
  f.records = {seed_record("a", {0.5, 1.0, 2.0, 3.0, 5.0}), seed_record("b", {1e-6, 4.0})};
  SpectrumRecord nan = seed_record("c", {1.0, 2.0});
  nan.sigma.clear(), nan.nonfinite = 1, nan.layer_metrics = LayerMetrics{};
  f.records.push_back(nan);
  f.scan_order = {2, 0, 1};
  std::vector<std::string> out;
  send_spectra_file(f, [&](const std::string& m) { out.push_back(m); });
  return out;
}

std::string seed_stream() {
  std::string s;
  for (const auto& m : seed_messages()) s += child_frame(kMessageFrame, m);
  return s + child_frame(kFinishedFrame, "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string seed = seed_stream();
  std::string stream;
  bool sigma_read = true;
  uint32_t pieces = 0x9e3779b9u;
  if (size >= 2 && data[0] == 0xff) {
    sigma_read = (data[1] & 1) == 0;
    pieces ^= data[1];
    stream.assign(reinterpret_cast<const char*>(data) + 2, size - 2);
  } else {
    stream = seed;
    size_t i = 0;
    for (; i + 3 <= size; i += 3) stream[(data[i] | data[i + 1] << 8) % stream.size()] = static_cast<char>(data[i + 2]);
    if (i < size) stream.resize(stream.size() * data[i] / 256);
    pieces ^= static_cast<uint32_t>(size);
  }
  ChildFrameParser parser;
  SpectraFileReceiver receiver("fuzz.h5", sigma_read);
  std::vector<std::string> messages;
  try {
    for (size_t at = 0; at < stream.size();) {
      pieces = pieces * 1664525u + 1013904223u;
      const size_t n = std::min<size_t>(stream.size() - at, 1 + (pieces >> 24) % 97);
      parser.feed(stream.data() + at, n, [&](std::string&& m) {
        messages.push_back(m);
        receiver.take(std::move(m));
      });
      at += n;
    }
    parser.end();
    if (!parser.malformed().empty()) {
      note("frames: " + parser.malformed());
      return 0;
    }
    if (parser.error() != nullptr && parser.finished()) finding("both an error and a finished frame");
    if (!parser.finished()) return 0;
    const SpectraFile f = receiver.finish();
    std::vector<std::string> again;
    send_spectra_file(f, [&](const std::string& m) { again.push_back(m); });
    if (again.size() != messages.size()) finding("the file re-encodes to another number of messages");
    for (size_t i = 0; i < again.size(); ++i)
      if (i > 0 && again[i] != messages[i]) finding("a record re-encodes to other bytes");  // the header's map may reorder keys
    for (const SpectrumRecord& r : f.records)
      if (const std::string why = read_record_problem(r, sigma_read); !why.empty()) finding("a record breaks the store's rules: " + why);
    g_sink = f.records.size();
  } catch (const InputError& e) {
    note(std::string("receiver: ") + e.what());
  } catch (const std::exception& e) {
    finding(std::string("something other than muspec::InputError: ") + e.what());
  }
  return 0;
}
