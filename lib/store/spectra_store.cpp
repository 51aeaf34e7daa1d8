#include "store/spectra_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/atomic_file.h"
#include "core/error.h"
#include "spectra/summary.h"
#include "store/h5.h"
#include "store/isolated_read.h"
#include "store/store_transport.h"
#include "store/summary_read.h"

namespace muspec {

namespace {

using h5::Failure;
using h5::Id;

constexpr const char* kGroupSpectra = "spectra";
constexpr const char* kGroupSummary = "summary";
constexpr const char* kScanOrder = "scan_order";

std::string ordinal(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06llu", static_cast<unsigned long long>(i));
  return buf;
}

// A record name for messages: short, whatever the record holds.
std::string label(const std::string& name) {
  std::string s = name.size() > 80 ? name.substr(0, 77) + "..." : name;
  return "'" + s + "'";
}

// Shortest decimal text that reads back as q ("0.5", "0.01", "1e-05"): the column names of the
// summary table. Equals printf's %g (the CSV's labels) for levels of up to 6 digits.
std::string level_text(double q) {
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, q);
    if (std::strtod(buf, nullptr) == q) break;
  }
  return buf;
}

// ---------------------------------------------------------------- writing


// Layer metrics (docs/layer-metrics.md) as attributes of a spectrum dataset: float64 reals,
// int64 counts, and the string "layer_metrics_note".
void write_layer_metrics(hid_t o, const LayerMetrics& lm) {
  for (const LayerMetricField& f : layer_metric_fields()) {
    if (f.real) h5::write_attr_f64(o, f.name, lm.*f.real);
    else h5::write_attr_i64(o, f.name, lm.*f.count);
  }
  h5::write_attr_string(o, "layer_metrics_note", lm.note);
}

// Reads them back; a store written before they existed (no "alpha" attribute) gets them
// recomputed from its sigma, so every reader sees them.
void read_layer_metrics(hid_t dset, SpectrumRecord& r) {
  if (!h5::has_attr(dset, "alpha")) {
    if (!r.sigma.empty()) r.layer_metrics = compute_layer_metrics(r.sigma, r.rows, r.cols, r.floor);
    return;
  }
  LayerMetrics& lm = r.layer_metrics;
  for (const LayerMetricField& f : layer_metric_fields()) {
    if (f.real) lm.*f.real = h5::read_attr_f64(dset, f.name);
    else lm.*f.count = h5::read_attr_i64(dset, f.name);
    if (!f.real && (lm.*f.count < -1 || lm.*f.count > static_cast<int64_t>(r.sigma.size())))
      throw Failure(std::string(f.name) + " " + std::to_string(lm.*f.count) + " is not between -1 and the " +
                    std::to_string(r.sigma.size()) + " singular values");
  }
  lm.note = h5::read_attr_string(dset, "layer_metrics_note");
}

void write_record(hid_t group, const std::string& dset_name, const SpectrumRecord& r) {
  h5::write_dataset_f64(group, dset_name, r.sigma);
  Id d = h5::open_dataset(group, dset_name);
  const hid_t o = d.get();
  h5::write_attr_string(o, "name", r.name);
  h5::write_attr_string(o, "tensor", r.tensor);
  h5::write_attr_i64(o, "slice", r.slice);
  h5::write_attr_string(o, "file", r.file);
  h5::write_attr_i64(o, "rows", r.rows);
  h5::write_attr_i64(o, "cols", r.cols);
  h5::write_attr_i64_array(o, "tensor_shape", r.tensor_shape);
  h5::write_attr_string(o, "dtype", r.dtype);
  h5::write_attr_string(o, "transform", r.transform);
  h5::write_attr_string(o, "run", r.run);
  h5::write_attr_i64(o, "step", r.step);
  h5::write_attr_i64(o, "model_params", r.model_params);
  h5::write_attr_string(o, "params_source", r.params_source);
  h5::write_attr_string(o, "sharded", r.sharded);
  h5::write_attr_i64(o, "shards", r.shards);
  h5::write_attr_string(o, "kind", r.kind);
  h5::write_attr_string(o, "parameter", r.parameter);
  h5::write_attr_string(o, "op_type", r.op_type);
  h5::write_attr_i64(o, "layer", r.layer);
  h5::write_attr_i64(o, "num_layers", r.num_layers);
  h5::write_attr_f64(o, "rel_depth", r.rel_depth);
  h5::write_attr_i64(o, "muon", r.muon ? 1 : 0);
  h5::write_attr_i64(o, "transposed", r.transposed ? 1 : 0);
  h5::write_attr_string(o, "method", r.method);
  h5::write_attr_string(o, "device", r.device);
  h5::write_attr_f64(o, "floor", r.floor);
  h5::write_attr_i64(o, "nonfinite", r.nonfinite);
  const SpectralSummary& s = r.summary;
  h5::write_attr_f64(o, "sigma_max", s.sigma_max);
  h5::write_attr_f64(o, "sigma_min", s.sigma_min);
  h5::write_attr_f64(o, "frobenius", s.frobenius);
  h5::write_attr_f64(o, "nuclear", s.nuclear);
  h5::write_attr_f64(o, "cond", s.cond);
  h5::write_attr_f64(o, "stable_rank", s.stable_rank);
  h5::write_attr_f64(o, "effective_rank", s.effective_rank);
  h5::write_attr_i64(o, "below_floor", s.below_floor);
  std::vector<double> levels, sigma, rel_max, rel_frob, cond;
  for (const QuantileValue& q : s.quantiles) {
    levels.push_back(q.q);
    sigma.push_back(q.sigma);
    rel_max.push_back(q.rel_max);
    rel_frob.push_back(q.rel_frob);
    cond.push_back(q.cond);
  }
  h5::write_attr_f64_array(o, "quantile_levels", levels);
  h5::write_attr_f64_array(o, "quantile_sigma", sigma);
  h5::write_attr_f64_array(o, "quantile_rel_max", rel_max);
  h5::write_attr_f64_array(o, "quantile_rel_frob", rel_frob);
  h5::write_attr_f64_array(o, "quantile_cond", cond);
  write_layer_metrics(o, r.layer_metrics);
  d.close("cannot close a spectrum dataset");
}

bool is_analysed(const SpectrumRecord& r) { return r.nonfinite == 0 && !r.sigma.empty(); }

// /summary/<column>: one 1-D dataset per column, one row per record, in the column order of
// `muspec scan --summary` (CSV). Rows of matrices that were not analysed hold NaN in the
// floating-point columns (the CSV leaves them blank).
void write_summary(hid_t group, const std::vector<SpectrumRecord>& records) {
  const double nan = std::nan("");
  auto strings = [&](const char* col, std::string SpectrumRecord::*field) {
    std::vector<std::string> v;
    for (const SpectrumRecord& r : records) v.push_back(r.*field);
    h5::write_dataset_strings(group, col, v);
  };
  auto ints = [&](const char* col, int64_t SpectrumRecord::*field) {
    std::vector<int64_t> v;
    for (const SpectrumRecord& r : records) v.push_back(r.*field);
    h5::write_dataset_i64(group, col, v);
  };
  auto reals = [&](const char* col, double SpectralSummary::*field) {
    std::vector<double> v;
    for (const SpectrumRecord& r : records) v.push_back(is_analysed(r) ? r.summary.*field : nan);
    h5::write_dataset_f64(group, col, v);
  };
  strings("name", &SpectrumRecord::name);
  strings("file", &SpectrumRecord::file);
  strings("tensor", &SpectrumRecord::tensor);
  ints("slice", &SpectrumRecord::slice);
  ints("rows", &SpectrumRecord::rows);
  ints("cols", &SpectrumRecord::cols);
  strings("dtype", &SpectrumRecord::dtype);
  strings("transform", &SpectrumRecord::transform);
  strings("run", &SpectrumRecord::run);
  ints("step", &SpectrumRecord::step);
  ints("model_params", &SpectrumRecord::model_params);
  strings("params_source", &SpectrumRecord::params_source);
  strings("sharded", &SpectrumRecord::sharded);
  ints("shards", &SpectrumRecord::shards);
  strings("kind", &SpectrumRecord::kind);
  strings("parameter", &SpectrumRecord::parameter);
  strings("op_type", &SpectrumRecord::op_type);
  ints("layer", &SpectrumRecord::layer);
  ints("num_layers", &SpectrumRecord::num_layers);
  {
    std::vector<double> depth;
    std::vector<bool> muon;
    for (const SpectrumRecord& r : records) depth.push_back(r.rel_depth), muon.push_back(r.muon);
    h5::write_dataset_f64(group, "rel_depth", depth);
    h5::write_dataset_bool(group, "muon", muon);
  }
  strings("method", &SpectrumRecord::method);
  strings("device", &SpectrumRecord::device);
  {
    std::vector<double> floor;
    std::vector<bool> analysed;
    for (const SpectrumRecord& r : records) {
      floor.push_back(is_analysed(r) ? r.floor : nan);
      analysed.push_back(is_analysed(r));
    }
    h5::write_dataset_f64(group, "floor", floor);
    ints("nonfinite", &SpectrumRecord::nonfinite);
    h5::write_dataset_bool(group, "analysed", analysed);
  }
  reals("sigma_max", &SpectralSummary::sigma_max);
  reals("sigma_min", &SpectralSummary::sigma_min);
  reals("frobenius", &SpectralSummary::frobenius);
  reals("nuclear", &SpectralSummary::nuclear);
  reals("cond", &SpectralSummary::cond);
  reals("stable_rank", &SpectralSummary::stable_rank);
  reals("effective_rank", &SpectralSummary::effective_rank);
  {
    std::vector<int64_t> v;
    for (const SpectrumRecord& r : records) v.push_back(r.summary.below_floor);
    h5::write_dataset_i64(group, "below_floor", v);
  }

  // Quantile columns q<level>_{sigma,rel_max,rel_frob,cond}: every level any record has, in
  // order of first appearance; NaN where a record lacks the level.
  std::vector<double> levels;
  for (const SpectrumRecord& r : records)
    for (const QuantileValue& q : r.summary.quantiles)
      if (std::find(levels.begin(), levels.end(), q.q) == levels.end()) levels.push_back(q.q);
  for (double level : levels) {
    std::vector<double> col[4];
    for (auto& c : col) c.assign(records.size(), nan);
    for (size_t i = 0; i < records.size(); ++i) {
      if (!is_analysed(records[i])) continue;
      for (const QuantileValue& q : records[i].summary.quantiles)
        if (q.q == level) {
          col[0][i] = q.sigma, col[1][i] = q.rel_max, col[2][i] = q.rel_frob, col[3][i] = q.cond;
          break;
        }
    }
    const std::string prefix = "q" + level_text(level) + "_";
    h5::write_dataset_f64(group, prefix + "sigma", col[0]);
    h5::write_dataset_f64(group, prefix + "rel_max", col[1]);
    h5::write_dataset_f64(group, prefix + "rel_frob", col[2]);
    h5::write_dataset_f64(group, prefix + "cond", col[3]);
  }
  for (const LayerMetricField& f : layer_metric_fields()) {  // after the quantiles, as in the CSV
    std::vector<double> reals;
    std::vector<int64_t> counts;
    for (const SpectrumRecord& r : records) {
      if (f.real) reals.push_back(is_analysed(r) ? r.layer_metrics.*f.real : nan);
      else counts.push_back(is_analysed(r) ? r.layer_metrics.*f.count : -1);
    }
    if (f.real) h5::write_dataset_f64(group, f.name, reals);
    else h5::write_dataset_i64(group, f.name, counts);
  }
  {
    std::vector<std::string> notes;
    for (const SpectrumRecord& r : records) notes.push_back(is_analysed(r) ? r.layer_metrics.note : std::string());
    h5::write_dataset_strings(group, "layer_metrics_note", notes);
  }
  store_detail::write_record_columns(group, records, levels);  // transposed, tensor_shape; the fast-read marker
}

void sync_to_disk(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw Failure(std::string("cannot flush the file to disk: ") + std::strerror(err));
  }
  ::close(fd);
}

// ---------------------------------------------------------------- reading

SpectrumRecord read_record(hid_t dset) {
  SpectrumRecord r;
  r.name = h5::read_attr_string(dset, "name");
  try {
    r.tensor = h5::read_attr_string(dset, "tensor");
    r.slice = h5::read_attr_i64(dset, "slice");
    r.file = h5::read_attr_string(dset, "file");
    r.rows = h5::read_attr_i64(dset, "rows");
    r.cols = h5::read_attr_i64(dset, "cols");
    r.tensor_shape = h5::read_attr_i64_array(dset, "tensor_shape");
    r.dtype = h5::read_attr_string(dset, "dtype");
    r.transform = h5::read_attr_string(dset, "transform");
    r.run = h5::read_attr_string(dset, "run");
    r.step = h5::read_attr_i64(dset, "step");
    r.model_params = h5::read_attr_i64(dset, "model_params");
    if (h5::has_attr(dset, "params_source")) r.params_source = h5::read_attr_string(dset, "params_source");  // absent in stores written before it existed
    if (h5::has_attr(dset, "sharded")) r.sharded = h5::read_attr_string(dset, "sharded");                     // likewise
    if (h5::has_attr(dset, "shards")) r.shards = h5::read_attr_i64(dset, "shards");
    r.kind = h5::read_attr_string(dset, "kind");
    r.parameter = h5::read_attr_string(dset, "parameter");
    r.op_type = h5::read_attr_string(dset, "op_type");
    r.layer = h5::read_attr_i64(dset, "layer");
    r.num_layers = h5::read_attr_i64(dset, "num_layers");
    r.rel_depth = h5::read_attr_f64(dset, "rel_depth");
    r.muon = h5::read_attr_i64(dset, "muon") != 0;
    r.transposed = h5::read_attr_i64(dset, "transposed") != 0;
    r.method = h5::read_attr_string(dset, "method");
    r.device = h5::read_attr_string(dset, "device");
    r.floor = h5::read_attr_f64(dset, "floor");
    r.nonfinite = h5::read_attr_i64(dset, "nonfinite");
    SpectralSummary& s = r.summary;
    s.sigma_max = h5::read_attr_f64(dset, "sigma_max");
    s.sigma_min = h5::read_attr_f64(dset, "sigma_min");
    s.frobenius = h5::read_attr_f64(dset, "frobenius");
    s.nuclear = h5::read_attr_f64(dset, "nuclear");
    s.cond = h5::read_attr_f64(dset, "cond");
    s.stable_rank = h5::read_attr_f64(dset, "stable_rank");
    s.effective_rank = h5::read_attr_f64(dset, "effective_rank");
    s.below_floor = h5::read_attr_i64(dset, "below_floor");

    static const char* const kQuantileAttrs[5] = {"quantile_levels", "quantile_sigma",
                                                  "quantile_rel_max", "quantile_rel_frob",
                                                  "quantile_cond"};
    std::vector<double> q[5];
    for (int k = 0; k < 5; ++k) {
      q[k] = h5::read_attr_f64_array(dset, kQuantileAttrs[k]);
      if (q[k].size() != q[0].size())
        throw Failure(std::string("quantile arrays disagree in length: ") + kQuantileAttrs[0] +
                      " has " + std::to_string(q[0].size()) + " values, " + kQuantileAttrs[k] +
                      " has " + std::to_string(q[k].size()));
    }
    for (size_t i = 0; i < q[0].size(); ++i)
      s.quantiles.push_back(QuantileValue{q[0][i], q[1][i], q[2][i], q[3][i], q[4][i]});

    const uint64_t expected =
        r.rows >= 0 && r.cols >= 0 ? static_cast<uint64_t>(std::min(r.rows, r.cols)) : 0;
    try {
      r.sigma = h5::read_dataset_f64(dset, expected);
    } catch (const Failure& e) {
      throw Failure(std::string("sigma: ") + e.what() + " (rows " + std::to_string(r.rows) +
                    ", cols " + std::to_string(r.cols) + ")");
    }
    const std::string problem = spectrum_record_problem(r);
    if (!problem.empty()) throw Failure(problem);
    read_layer_metrics(dset, r);
  } catch (const Failure& e) {
    throw Failure("record " + label(r.name) + ": " + e.what());
  }
  return r;
}

}  // namespace

namespace store_detail {
std::string record_dataset_name(uint64_t i) { return ordinal(i); }
std::string quantile_level_text(double q) { return level_text(q); }
SpectrumRecord read_record_attributes(hid_t dset) { return read_record(dset); }
}  // namespace store_detail

void write_spectra_h5(const std::string& path, const SpectraFile& file) {
  const std::string ctx = "cannot write spectra file '" + path + "'";
  for (const auto& [key, value] : file.attributes)
    if (key == "format" || key == "format_version")
      throw Error(ctx + ": file attribute name '" + key + "' is reserved");
  AtomicOutput out(path);  // removes the temporary unless committed
  try {
    Id f = h5::create_file(out.temp_path());
    const hid_t root = f.get();
    h5::write_attr_string(root, "format", kSpectraFormat);
    h5::write_attr_i64(root, "format_version", kSpectraFormatVersion);
    for (const auto& [key, value] : file.attributes) h5::write_attr_string(root, key, value);
    {
      Id spectra = h5::create_group(root, kGroupSpectra, false);
      for (size_t i = 0; i < file.records.size(); ++i) {
        const SpectrumRecord& r = file.records[i];
        const std::string name = ordinal(i);
        try {
          // Validated record by record, so that a bad record fails mid-file (the temporary is
          // then removed, like after any other failure).
          const std::string problem = spectrum_record_problem(r);
          if (!problem.empty()) throw Failure(problem);
          write_record(spectra.get(), name, r);
        } catch (const Failure& e) {
          throw Failure("record " + std::to_string(i) + " " + label(r.name) + ": " + e.what());
        }
      }
      spectra.close("cannot close group /spectra");
    }
    if (!file.scan_order.empty()) {
      if (file.scan_order.size() != file.records.size()) throw Failure("scan_order does not have one entry per record");
      h5::write_dataset_i64(root, kScanOrder, file.scan_order);
    }
    {
      Id summary = h5::create_group(root, kGroupSummary, true);
      write_summary(summary.get(), file.records);
      summary.close("cannot close group /summary");
    }
    f.close("cannot close the file");
    sync_to_disk(out.temp_path());
  } catch (const Failure& e) {
    throw Error(ctx + ": " + e.what());
  }
  out.commit();
}

namespace {

SpectraFile read_in_process(const std::string& path, const SpectraReadOptions& options) {
  SpectraFile out;
  std::string where;  // the dataset being read, for messages
  try {
    Id f = h5::open_file_readonly(path);
    const hid_t root = f.get();
    if (!h5::has_attr(root, "format"))
      throw Failure("not a muspec spectra file (no 'format' attribute)");
    const std::string format = h5::read_attr_string(root, "format");
    if (format != kSpectraFormat)
      throw Failure("not a muspec spectra file (format is '" + format.substr(0, 80) +
                    "', expected '" + kSpectraFormat + "')");
    const int64_t version = h5::read_attr_i64(root, "format_version");
    if (version != kSpectraFormatVersion)
      throw Failure("unsupported format_version " + std::to_string(version) +
                    " (this muspec reads version " + std::to_string(kSpectraFormatVersion) + ")");
    for (const std::string& key : h5::attr_names(root))
      if (key != "format" && key != "format_version")
        out.attributes[key] = h5::read_attr_string(root, key);

    Id spectra = h5::open_group(root, kGroupSpectra);
    const uint64_t count = h5::link_count(spectra.get());
    // A store whose /summary is marked complete is read column by column (store/summary_read.h);
    // any problem there sends the read down the record-by-record path, which reports it.
    auto fast = store_detail::read_records_from_summary(root, spectra.get(), count, options.sigma);
    if (fast) out.records = std::move(*fast);
    else out.records.reserve(std::min<uint64_t>(count, 1 << 16));
    for (uint64_t i = fast ? count : 0; i < count; ++i) {
      const std::string name = ordinal(i);
      where = std::string("/") + kGroupSpectra + "/" + name;
      if (!h5::link_exists(spectra.get(), name))
        throw Failure("missing: /spectra holds " + std::to_string(count) +
                      " links, which must be the datasets " + ordinal(0) + " to " +
                      ordinal(count - 1));
      Id dset = h5::open_dataset(spectra.get(), name);
      out.records.push_back(read_record(dset.get()));
    }
    where.clear();
    spectra.close("cannot close group /spectra");
    if (h5::link_exists(root, kScanOrder)) {
      where = std::string("/") + kScanOrder;
      Id d = h5::open_dataset(root, kScanOrder);
      out.scan_order = h5::read_dataset_i64(d.get(), count);
      if (out.scan_order.size() != count) throw Failure("has " + std::to_string(out.scan_order.size()) + " entries for " + std::to_string(count) + " records");
      for (int64_t v : out.scan_order)
        if (v < 0) throw Failure("holds a negative index");
      where.clear();
    }
    f.close("cannot close the file");
  } catch (const Failure& e) {
    throw InputError(path, where, e.what());
  }
  return out;
}

}  // namespace

SpectraFile read_spectra_h5(const std::string& path, const SpectraReadOptions& options) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw InputError(path, "", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw InputError(path, "", "not a regular file");
  // A crash or hang inside libhdf5 on a crafted file stays in a child (store/isolated_read.h),
  // which sends the records it read (store/store_transport.h): this process never runs libhdf5
  // on the file, so libhdf5's failure paths (which keep what they had allocated) stay there too.
  SpectraFileReceiver received(path, options.sigma);
  const bool read_there = read_in_child(
      path, [&](ChildChannel& channel) { send_spectra_file(read_in_process(path, options), [&](const std::string& m) { channel.send(m); }); },
      [&](std::string&& message) { received.take(std::move(message)); }, isolated_read_timeout_s(st.st_size));
  return read_there ? received.finish() : read_in_process(path, options);
}

}  // namespace muspec
