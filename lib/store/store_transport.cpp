#include "store/store_transport.h"

#include <algorithm>

#include "core/byte_codec.h"
#include "core/error.h"
#include "spectra/record_codec.h"
#include "store/isolated_read.h"

namespace muspec {

namespace {

constexpr char kMagic[] = "MUSPECS1";
constexpr size_t kMagicSize = 8;

}  // namespace

void send_spectra_file(const SpectraFile& file, const std::function<void(const std::string&)>& send) {
  ByteWriter h;
  h.bytes().assign(kMagic, kMagicSize);
  h.u32(static_cast<uint32_t>(file.attributes.size()));
  for (const auto& [key, value] : file.attributes) h.str(key), h.str(value);
  h.i64(static_cast<int64_t>(file.records.size()));
  h.i64s(file.scan_order);
  send(h.bytes());
  for (const SpectrumRecord& r : file.records) {
    ByteWriter w;
    put_spectrum_record(w, r, LayerMetricsCoding::Included);
    send(w.bytes());
  }
}

void SpectraFileReceiver::damaged(const std::string& what) const {
  throw child_sent_damaged(path_, what);
}

void SpectraFileReceiver::take(std::string&& message) {
  ByteReader r(message.data(), message.size());
  try {
    if (!have_header_) {
      if (message.compare(0, kMagicSize, kMagic, kMagicSize) != 0) damaged("no header");
      r.take(kMagicSize, "the magic");
      const uint32_t n = r.count(8, "an attribute");
      for (uint32_t i = 0; i < n; ++i) {
        std::string key = r.str();
        file_.attributes[key] = r.str();
      }
      if (file_.attributes.size() != n) damaged("a header with a repeated attribute");
      expected_ = r.i64();
      file_.scan_order = r.i64s();
      if (expected_ < 0 || r.left() != 0) damaged("a malformed header");
      if (!file_.scan_order.empty() && file_.scan_order.size() != static_cast<uint64_t>(expected_))
        damaged("a scan order of " + std::to_string(file_.scan_order.size()) + " entries for " + std::to_string(expected_) + " records");
      if (std::any_of(file_.scan_order.begin(), file_.scan_order.end(), [](int64_t v) { return v < 0; }))
        damaged("a negative scan-order index");
      file_.records.reserve(static_cast<size_t>(std::min<int64_t>(expected_, 1 << 16)));
      have_header_ = true;
      return;
    }
    if (static_cast<int64_t>(file_.records.size()) >= expected_) damaged("more records than it announced");
    SpectrumRecord rec = get_spectrum_record(r, LayerMetricsCoding::Included);
    if (r.left() != 0) damaged("a record with " + std::to_string(r.left()) + " bytes past its end");
    if (std::string problem = read_record_problem(rec, sigma_read_); !problem.empty())
      damaged("record '" + rec.name.substr(0, 80) + "', which breaks the store's rules: " + problem);
    file_.records.push_back(std::move(rec));
  } catch (const ByteCodecError& e) {
    damaged(std::string(have_header_ ? "a damaged record: " : "a damaged header: ") + e.what);
  }
}

SpectraFile SpectraFileReceiver::finish() {
  if (!have_header_) damaged("no header");
  if (static_cast<int64_t>(file_.records.size()) != expected_)
    damaged(std::to_string(file_.records.size()) + " of the " + std::to_string(expected_) + " records it announced");
  return std::move(file_);
}

}  // namespace muspec
