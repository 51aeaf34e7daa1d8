// The records a store-reading child sends back (lib/store/store_transport.h) and the isolated
// read built on it (lib/store/isolated_read.h). Oracles: the records sent, bit for bit; and an
// in-process read of the same file (MUSPEC_H5_ISOLATION=off), which the isolated read must equal
// field by field. The receiver's input is untrusted: every cut, every changed count and every
// record that breaks the store's rules must give an InputError naming the store, never a crash.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/byte_codec.h"
#include "core/error.h"
#include "spectra/layer_metrics.h"
#include "spectra/record_codec.h"
#include "store/isolated_read.h"
#include "store/spectra_store.h"
#include "store/store_transport.h"
#include "store/summary_columns.h"
#include "record_compare.h"
#include "store_samples.h"
#include "test_support.h"

using muspec::InputError;
using muspec::SpectraFile;
using muspec::SpectraFileReceiver;
using muspec::SpectrumRecord;
using muspec_test::TempDir;
using namespace muspec_test::store_samples;

namespace {

/// sample_file() with layer metrics on its analysed records, one more record with defined
/// metrics, and a scan order.
SpectraFile transport_sample() {
  SpectraFile f = sample_file();
  for (auto& r : f.records)
    if (!r.sigma.empty()) r.layer_metrics = muspec::compute_layer_metrics(r.sigma, r.rows, r.cols, r.floor);
  std::vector<double> sigma(30);
  for (size_t i = 0; i < sigma.size(); ++i) sigma[i] = 0.1 * static_cast<double>(i * i + 1);
  f.records.push_back(analysed("layers.9.w", 40, 30, sigma, {0.1, 0.5, 0.9}));
  f.records.back().layer_metrics = muspec::compute_layer_metrics(sigma, 40, 30, 1e-12);
  for (size_t i = 0; i < f.records.size(); ++i) f.scan_order.push_back(static_cast<int64_t>(f.records.size() - 1 - i));
  return f;
}

std::vector<std::string> messages_of(const SpectraFile& f) {
  std::vector<std::string> out;
  muspec::send_spectra_file(f, [&](const std::string& m) { out.push_back(m); });
  return out;
}

SpectraFile receive(const std::vector<std::string>& messages) {
  SpectraFileReceiver r("/stores/spectra.h5", true);
  for (std::string m : messages) r.take(std::move(m));
  return r.finish();
}

/// The InputError's reason from receiving `messages`, or "" when they were accepted.
std::string refusal(const std::vector<std::string>& messages) {
  try {
    receive(messages);
  } catch (const InputError& e) {
    CHECK(e.file() == "/stores/spectra.h5");
    return e.reason();
  }
  return "";
}

void check_same_file(const SpectraFile& a, const SpectraFile& b, bool with_sigma = true) {
  CHECK(a.attributes == b.attributes);
  CHECK(a.scan_order == b.scan_order);
  REQUIRE(a.records.size() == b.records.size());
  for (size_t i = 0; i < a.records.size(); ++i) muspec_test::check_same_record(a.records[i], b.records[i], with_sigma);
}

SpectraFile read_in_this_process(const std::string& path, const muspec::SpectraReadOptions& options = {}) {
  ::setenv("MUSPEC_H5_ISOLATION", "off", 1);
  SpectraFile f = muspec::read_spectra_h5(path, options);
  ::unsetenv("MUSPEC_H5_ISOLATION");
  return f;
}

}  // namespace

TEST_CASE("store transport: what the child sends is rebuilt bit for bit", "[store]") {
  const SpectraFile in = transport_sample();
  REQUIRE(std::isnan(in.records[1].floor));          // NaN and -0.0 in the sample
  REQUIRE(std::isfinite(in.records.back().layer_metrics.alpha));  // and metrics that are defined
  const SpectraFile out = receive(messages_of(in));
  check_same_file(in, out);
  SpectraFile empty;
  check_same_file(empty, receive(messages_of(empty)));
}

TEST_CASE("store transport: the isolated read equals an in-process read of the same file", "[store]") {
  TempDir dir("transport");
  const std::string path = dir.file("spectra.h5");
  muspec::write_spectra_h5(path, transport_sample());
  const SpectraFile isolated = muspec::read_spectra_h5(path);
  check_same_file(read_in_this_process(path), isolated);
  check_same_file(transport_sample(), isolated);  // and both equal what was written
  muspec::SpectraReadOptions summaries;
  summaries.sigma = false;
  check_same_file(read_in_this_process(path, summaries), muspec::read_spectra_h5(path, summaries), false);
  // The report's optional columns come through the child too.
  const std::vector<std::string> names = {"alpha", "log_norm", "num_spikes", "no_such_column"};
  const auto columns = muspec::read_summary_columns(path, names, isolated.records.size());
  ::setenv("MUSPEC_H5_ISOLATION", "off", 1);
  const auto direct = muspec::read_summary_columns(path, names, isolated.records.size());
  ::unsetenv("MUSPEC_H5_ISOLATION");
  CHECK(columns.size() == 3);
  REQUIRE(columns.size() == direct.size());
  for (const auto& [name, values] : direct) {
    INFO(name);
    REQUIRE(columns.count(name) == 1);
    REQUIRE(columns.at(name).size() == values.size());
    for (size_t i = 0; i < values.size(); ++i) CHECK(same_value(columns.at(name)[i], values[i]));
  }
}

TEST_CASE("store transport: cut, padded or miscounted messages are refused", "[store][hostile]") {
  const std::vector<std::string> good = messages_of(transport_sample());
  REQUIRE(refusal(good).empty());
  // Every cut of every message.
  for (size_t m = 0; m < good.size(); ++m)
    for (size_t cut = 0; cut < good[m].size(); ++cut) {
      auto bad = good;
      bad[m].resize(cut);
      INFO("message " << m << " cut to " << cut);
      CHECK_THAT(refusal(bad), Catch::Contains("the reading process sent"));
    }
  auto padded = good;
  padded[2] += "x";
  CHECK_THAT(refusal(padded), Catch::Contains("1 bytes past its end"));
  auto fewer = good;
  fewer.pop_back();
  CHECK_THAT(refusal(fewer), Catch::Contains("sent 5 of the 6 records it announced"));
  auto more = good;
  more.push_back(good.back());
  CHECK_THAT(refusal(more), Catch::Contains("more records than it announced"));
  CHECK_THAT(refusal({}), Catch::Contains("no header"));
  CHECK_THAT(refusal({good[1]}), Catch::Contains("no header"));
  // A flag that is neither 0 nor 1, a repeated attribute, a negative scan-order index.
  SpectraFile one;
  one.records.push_back(transport_sample().records[0]);
  auto flagged = messages_of(one);
  muspec::ByteWriter prefix;
  {
    const SpectrumRecord& r = one.records[0];
    prefix.str(r.name), prefix.str(r.tensor), prefix.i64(r.slice), prefix.str(r.file), prefix.i64(r.rows), prefix.i64(r.cols);
    prefix.i64s(r.tensor_shape), prefix.str(r.dtype), prefix.str(r.transform);
    prefix.str(r.run), prefix.i64(r.step), prefix.i64(r.model_params), prefix.str(r.params_source), prefix.str(r.sharded);
    prefix.i64(r.shards), prefix.str(r.kind), prefix.str(r.parameter), prefix.str(r.op_type), prefix.i64(r.layer);
    prefix.i64(r.num_layers), prefix.f64(r.rel_depth);
  }
  REQUIRE(flagged[1].compare(0, prefix.bytes().size(), prefix.bytes()) == 0);  // the muon flag comes next
  flagged[1][prefix.bytes().size()] = 2;
  CHECK_THAT(refusal(flagged), Catch::Contains("a flag is neither 0 nor 1"));
  SpectraFile ordered = one;
  ordered.scan_order = {-1};
  CHECK_THAT(refusal(messages_of(ordered)), Catch::Contains("negative scan-order index"));
  ordered.scan_order = {0, 1};
  CHECK_THAT(refusal(messages_of(ordered)), Catch::Contains("a scan order of 2 entries for 1 records"));
  muspec::ByteWriter twice;
  twice.bytes() = "MUSPECS1";
  twice.u32(2), twice.str("k"), twice.str("a"), twice.str("k"), twice.str("b"), twice.i64(0), twice.u32(0);
  CHECK_THAT(refusal({twice.bytes()}), Catch::Contains("a repeated attribute"));
}

TEST_CASE("store transport: a record that breaks the store's rules is refused", "[store][hostile]") {
  SpectraFile f;
  f.records.push_back(transport_sample().records[0]);
  std::swap(f.records[0].sigma[0], f.records[0].sigma[2]);  // no longer ascending
  const std::string why = refusal(messages_of(f));
  CHECK_THAT(why, Catch::Contains("breaks the store's rules"));
  CHECK(why.find(muspec::spectrum_record_problem(f.records[0])) != std::string::npos);  // the rule's own words
  // A layer-metric count above the number of singular values.
  f = SpectraFile{};
  f.records.push_back(transport_sample().records.back());
  f.records[0].layer_metrics.num_spikes = 31;
  CHECK_THAT(refusal(messages_of(f)), Catch::Contains("num_spikes 31 is not between -1 and the 30 singular values"));
  // Without sigma (a summaries-only read) below_floor may count up to min(rows, cols): accepted
  // there, refused where sigma was read.
  f.records[0].layer_metrics.num_spikes = 3;
  f.records[0].sigma.clear();
  f.records[0].summary.below_floor = 30;
  CHECK_THAT(refusal(messages_of(f)), Catch::Contains("below_floor 30 is not between 0 and 0"));
  SpectraFileReceiver summaries("/stores/spectra.h5", false);
  for (std::string m : messages_of(f)) summaries.take(std::move(m));
  CHECK(summaries.finish().records.size() == 1);
}

TEST_CASE("store transport: random damage gives records or an InputError, nothing else", "[store][hostile]") {
  const std::vector<std::string> good = messages_of(transport_sample());
  std::mt19937_64 rng(14);
  int accepted = 0, refused = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    auto bad = good;
    for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) {
      std::string& m = bad[rng() % bad.size()];
      if (!m.empty()) m[rng() % m.size()] = static_cast<char>(rng());
    }
    try {
      const SpectraFile f = receive(bad);
      for (const auto& r : f.records) CHECK(muspec::spectrum_record_problem(r).empty());
      ++accepted;
    } catch (const InputError&) {
      ++refused;
    }
  }
  CHECK(refused > 100);   // the checks can fail: damage is noticed
  CHECK(accepted > 100);  // and damage to free text or unchecked numbers passes, as it should
}

TEST_CASE("store transport: the frame parser gives the same messages however the bytes arrive", "[store]") {
  const std::vector<std::string> messages = messages_of(transport_sample());
  std::string stream;
  for (const auto& m : messages) stream += muspec::child_frame(muspec::kMessageFrame, m);
  stream += muspec::child_frame(muspec::kFinishedFrame, "");
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    muspec::ChildFrameParser parser;
    std::vector<std::string> got;
    for (size_t at = 0; at < stream.size();) {
      const size_t n = std::min<size_t>(stream.size() - at, trial == 0 ? 1 : 1 + rng() % 300);
      parser.feed(stream.data() + at, n, [&](std::string&& m) { got.push_back(std::move(m)); });
      at += n;
    }
    parser.end();
    CHECK(parser.malformed().empty());
    CHECK(parser.finished());
    CHECK(parser.error() == nullptr);
    CHECK(got == messages);
  }
  muspec::ChildFrameParser cut;
  cut.feed(stream.data(), stream.size() - 1, [](std::string&&) {});
  cut.end();
  CHECK(cut.malformed() == "a report cut short");
  CHECK_FALSE(cut.finished());
}
