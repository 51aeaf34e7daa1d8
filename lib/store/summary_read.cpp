#include "store/summary_read.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "spectra/layer_metrics.h"
#include "store/h5.h"
#include "store/spectra_store.h"

namespace muspec::store_detail {

namespace {

using h5::Failure;
using h5::Id;

constexpr const char* kMarker = "record_columns";  // int64 1: the columns hold every analysed record
constexpr const char* kLevels = "quantile_levels";
constexpr int64_t kMarkerVersion = 1;
constexpr size_t kMaxLevels = h5::kMaxArrayAttributeBytes / sizeof(double);

bool analysed(const SpectrumRecord& r) { return r.nonfinite == 0 && !r.sigma.empty(); }

// ---------------------------------------------------------------- writing

// The columns describe every analysed record exactly when each record's quantile levels are
// the column levels it has, in column order (a record's levels are read back in that order).
bool levels_in_column_order(const std::vector<SpectrumRecord>& records, const std::vector<double>& levels) {
  if (levels.size() > kMaxLevels) return false;
  for (const SpectrumRecord& r : records) {
    if (!analysed(r)) continue;
    size_t at = 0;
    for (const QuantileValue& q : r.summary.quantiles) {
      while (at < levels.size() && (levels[at] != q.q || std::signbit(levels[at]) != std::signbit(q.q))) ++at;
      if (at == levels.size()) return false;
      ++at;
    }
  }
  return true;
}

// ---------------------------------------------------------------- reading columns

uint64_t column_length(hid_t dset) {
  Id space(H5Dget_space(dset), H5Sclose, "cannot read a dataset shape");
  if (H5Sget_simple_extent_type(space.get()) != H5S_SIMPLE || H5Sget_simple_extent_ndims(space.get()) != 1)
    throw Failure("column is not 1-D");
  hsize_t n = 0;
  if (H5Sget_simple_extent_dims(space.get(), &n, nullptr) != 1) throw Failure("cannot query a column");
  return n;
}

Id column(hid_t group, const std::string& name, uint64_t rows) {
  Id d = h5::open_dataset(group, name);
  if (column_length(d.get()) != rows) throw Failure("column " + name + " does not have one row per record");
  return d;
}

std::vector<double> f64_column(hid_t group, const std::string& name, uint64_t rows) {
  Id d = column(group, name, rows);
  return h5::read_dataset_f64(d.get(), rows);
}

std::vector<int64_t> i64_column(hid_t group, const std::string& name, uint64_t rows) {
  Id d = column(group, name, rows);
  return h5::read_dataset_i64(d.get(), rows);
}

// h5py's bool (an int8 enum FALSE = 0, TRUE = 1) or a 1-byte integer; values must be 0 or 1.
std::vector<bool> bool_column(hid_t group, const std::string& name, uint64_t rows) {
  Id d = column(group, name, rows);
  Id type(H5Dget_type(d.get()), H5Tclose, "cannot read a dataset type");
  const H5T_class_t cls = H5Tget_class(type.get());
  if ((cls != H5T_ENUM && cls != H5T_INTEGER) || H5Tget_size(type.get()) != 1) throw Failure("column " + name + " is not bool");
  if (rows == 0) return {};
  if (H5Dget_storage_size(d.get()) < rows) throw Failure("column " + name + " stores too few bytes");
  Id mem(H5Tget_native_type(type.get(), H5T_DIR_ASCEND), H5Tclose, "cannot read a dataset type");
  std::vector<int8_t> bytes(rows);
  h5::check(H5Dread(d.get(), mem.get(), H5S_ALL, H5S_ALL, h5::transfer_for(rows).get(), bytes.data()), "cannot read a bool column");
  std::vector<bool> v(rows);
  for (uint64_t i = 0; i < rows; ++i) {
    if (bytes[i] != 0 && bytes[i] != 1) throw Failure("column " + name + " holds a bool other than 0 or 1");
    v[i] = bytes[i] == 1;
  }
  return v;
}

// Variable-length strings only (what the writer writes); anything else gives the fast path up.
std::vector<std::string> string_column(hid_t group, const std::string& name, uint64_t rows) {
  Id d = column(group, name, rows);
  Id type(H5Dget_type(d.get()), H5Tclose, "cannot read a dataset type");
  if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) <= 0)
    throw Failure("column " + name + " is not a variable-length string");
  if (rows == 0) return {};
  if (H5Dget_storage_size(d.get()) == 0) throw Failure("column " + name + " stores no data");
  const H5T_cset_t cset = H5Tget_cset(type.get());
  if (cset < 0) h5::fail("cannot read a string column");
  Id mem(H5Tcopy(H5T_C_S1), H5Tclose, "cannot create a string type");
  h5::check(H5Tset_size(mem.get(), H5T_VARIABLE), "cannot create a string type");
  h5::check(H5Tset_cset(mem.get(), cset), "cannot create a string type");
  Id space(H5Dget_space(d.get()), H5Sclose, "cannot read a dataset shape");
  std::vector<char*> ptrs(rows, nullptr);
  h5::check(H5Dread(d.get(), mem.get(), H5S_ALL, H5S_ALL, h5::transfer_for(rows).get(), ptrs.data()), "cannot read a string column");
  std::vector<std::string> v(rows);
  for (uint64_t i = 0; i < rows; ++i)
    if (ptrs[i] != nullptr) v[i] = ptrs[i];
  h5::check(H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data()), "cannot free a string column");
  return v;
}

/// Every column of /summary the records need, read once.
struct Columns {
  std::vector<std::string> name, file, tensor, dtype, transform, run, params_source, sharded, kind, parameter,
      op_type, method, device, note, tensor_shape;
  std::vector<int64_t> slice, rows, cols, step, model_params, shards, layer, num_layers, nonfinite, below_floor;
  std::vector<double> rel_depth, floor, sigma_max, sigma_min, frobenius, nuclear, cond, stable_rank, effective_rank;
  std::vector<bool> muon, transposed, analysed;
  std::vector<double> levels;
  std::vector<std::vector<double>> quantile[4];  // [sigma, rel_max, rel_frob, cond][level][row]
  std::vector<std::vector<double>> metric_reals;
  std::vector<std::vector<int64_t>> metric_counts;  // in layer_metric_fields() order, split by kind
};

Columns read_columns(hid_t g, uint64_t n) {
  Columns c;
  c.levels = h5::read_attr_f64_array(g, kLevels);
  if (c.levels.size() > kMaxLevels) throw Failure("too many quantile levels");
  auto s = [&](const char* name) { return string_column(g, name, n); };
  auto i = [&](const char* name) { return i64_column(g, name, n); };
  auto f = [&](const char* name) { return f64_column(g, name, n); };
  c.name = s("name"), c.file = s("file"), c.tensor = s("tensor"), c.dtype = s("dtype"), c.transform = s("transform");
  c.run = s("run"), c.params_source = s("params_source"), c.sharded = s("sharded"), c.kind = s("kind");
  c.parameter = s("parameter"), c.op_type = s("op_type"), c.method = s("method"), c.device = s("device");
  c.note = s("layer_metrics_note"), c.tensor_shape = s("tensor_shape");
  c.slice = i("slice"), c.rows = i("rows"), c.cols = i("cols"), c.step = i("step"), c.model_params = i("model_params");
  c.shards = i("shards"), c.layer = i("layer"), c.num_layers = i("num_layers"), c.nonfinite = i("nonfinite");
  c.below_floor = i("below_floor");
  c.rel_depth = f("rel_depth"), c.floor = f("floor"), c.sigma_max = f("sigma_max"), c.sigma_min = f("sigma_min");
  c.frobenius = f("frobenius"), c.nuclear = f("nuclear"), c.cond = f("cond"), c.stable_rank = f("stable_rank");
  c.effective_rank = f("effective_rank");
  c.muon = bool_column(g, "muon", n), c.transposed = bool_column(g, "transposed", n);
  c.analysed = bool_column(g, "analysed", n);
  static const char* const kSuffix[4] = {"_sigma", "_rel_max", "_rel_frob", "_cond"};
  for (double level : c.levels)
    for (int k = 0; k < 4; ++k) c.quantile[k].push_back(f64_column(g, "q" + quantile_level_text(level) + kSuffix[k], n));
  for (const LayerMetricField& m : layer_metric_fields()) {
    if (m.real) c.metric_reals.push_back(f64_column(g, m.name, n));
    else c.metric_counts.push_back(i64_column(g, m.name, n));
  }
  return c;
}

// Record `i` of an analysed row, without sigma.
SpectrumRecord record_from_columns(const Columns& c, size_t i) {
  SpectrumRecord r;
  r.name = c.name[i], r.tensor = c.tensor[i], r.slice = c.slice[i], r.file = c.file[i];
  r.rows = c.rows[i], r.cols = c.cols[i], r.tensor_shape = parse_tensor_shape(c.tensor_shape[i]);
  r.dtype = c.dtype[i], r.transform = c.transform[i], r.run = c.run[i], r.step = c.step[i];
  r.model_params = c.model_params[i], r.params_source = c.params_source[i], r.sharded = c.sharded[i];
  r.shards = c.shards[i], r.kind = c.kind[i], r.parameter = c.parameter[i], r.op_type = c.op_type[i];
  r.layer = c.layer[i], r.num_layers = c.num_layers[i], r.rel_depth = c.rel_depth[i];
  r.muon = c.muon[i], r.transposed = c.transposed[i], r.method = c.method[i], r.device = c.device[i];
  r.floor = c.floor[i], r.nonfinite = c.nonfinite[i];
  SpectralSummary& s = r.summary;
  s.sigma_max = c.sigma_max[i], s.sigma_min = c.sigma_min[i], s.frobenius = c.frobenius[i], s.nuclear = c.nuclear[i];
  s.cond = c.cond[i], s.stable_rank = c.stable_rank[i], s.effective_rank = c.effective_rank[i];
  s.below_floor = c.below_floor[i];
  // An analysed record has a level exactly when its quantile_sigma is a number (the writer puts
  // NaN where it lacks the level; a level's sigma quantile of finite sigma is never NaN).
  for (size_t k = 0; k < c.levels.size(); ++k)
    if (!std::isnan(c.quantile[0][k][i]))
      s.quantiles.push_back(QuantileValue{c.levels[k], c.quantile[0][k][i], c.quantile[1][k][i],
                                          c.quantile[2][k][i], c.quantile[3][k][i]});
  size_t real = 0, count = 0;
  for (const LayerMetricField& m : layer_metric_fields()) {
    if (m.real) r.layer_metrics.*m.real = c.metric_reals[real++][i];
    else r.layer_metrics.*m.count = c.metric_counts[count++][i];
  }
  r.layer_metrics.note = c.note[i];
  return r;
}

// The checks the per-record reader applies (read_record_problem: spectrum_record_problem and the
// layer-metric counts, against min(rows, cols) values when sigma was not read).
void check_record(const SpectrumRecord& r, bool with_sigma) {
  if (r.nonfinite != 0 || r.rows <= 0 || r.cols <= 0) throw Failure("an analysed row is not analysable");
  if (std::string problem = read_record_problem(r, with_sigma); !problem.empty()) throw Failure(problem);
}

// Without sigma no record dataset is opened, so check /spectra's links in one pass instead: each
// a hard link named by an ordinal below `n` (the per-record reader refuses soft and external
// links before following them; an external link may name a FIFO that blocks open() forever).
void check_record_links(hid_t spectra, uint64_t n) {
  struct Seen {
    uint64_t n;
    std::vector<bool> seen;
    bool ok = true;
  } s{n, std::vector<bool>(n, false)};
  auto visit = [](hid_t, const char* name, const H5L_info_t* info, void* data) -> herr_t {
    auto* s = static_cast<Seen*>(data);
    uint64_t i = 0;
    const std::string text = name != nullptr ? name : "";
    bool digits = !text.empty() && text.size() <= 18;
    for (char ch : text) digits = digits && ch >= '0' && ch <= '9', i = i * 10 + static_cast<uint64_t>(ch - '0');
    if (info->type != H5L_TYPE_HARD || !digits || i >= s->n || record_dataset_name(i) != text || s->seen[i]) {
      s->ok = false;
      return 1;  // stop
    }
    s->seen[i] = true;
    return 0;
  };
  hsize_t at = 0;
  h5::check(H5Literate(spectra, H5_INDEX_NAME, H5_ITER_NATIVE, &at, visit, &s), "cannot list /spectra");
  if (!s.ok || std::find(s.seen.begin(), s.seen.end(), false) != s.seen.end()) throw Failure("/spectra links");
}

std::vector<SpectrumRecord> read_all(hid_t root, hid_t spectra, uint64_t n, bool with_sigma) {
  if (!with_sigma) check_record_links(spectra, n);
  Id g = h5::open_group(root, "summary");
  const Columns c = read_columns(g.get(), n);
  std::vector<SpectrumRecord> records;
  records.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    if (!c.analysed[i]) {  // rare: NaN/Inf entries or an empty matrix; its fields live in the attributes only
      Id d = h5::open_dataset(spectra, record_dataset_name(i));
      records.push_back(read_record_attributes(d.get()));
      continue;
    }
    SpectrumRecord r = record_from_columns(c, i);
    if (with_sigma) {
      Id d = h5::open_dataset(spectra, record_dataset_name(i));
      r.sigma = h5::read_dataset_f64(d.get(), static_cast<uint64_t>(std::max<int64_t>(0, std::min(r.rows, r.cols))));
      if (r.sigma.empty()) throw Failure("an analysed row has no sigma");
    }
    check_record(r, with_sigma);
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace

void write_record_columns(hid_t group, const std::vector<SpectrumRecord>& records, const std::vector<double>& levels) {
  std::vector<bool> transposed;
  std::vector<std::string> shapes;
  for (const SpectrumRecord& r : records) {
    transposed.push_back(r.transposed);
    shapes.push_back(tensor_shape_text(r.tensor_shape));
  }
  h5::write_dataset_bool(group, "transposed", transposed);
  h5::write_dataset_strings(group, "tensor_shape", shapes);
  if (!levels_in_column_order(records, levels)) return;  // readers then read record by record
  h5::write_attr_f64_array(group, kLevels, levels);
  h5::write_attr_i64(group, kMarker, kMarkerVersion);
}

namespace {
std::atomic<uint64_t> g_column_read_failures{0};
}  // namespace

uint64_t column_read_failures() { return g_column_read_failures.load(std::memory_order_relaxed); }

std::optional<std::vector<SpectrumRecord>> read_records_from_summary(hid_t root, hid_t spectra, uint64_t count,
                                                                      bool with_sigma) {
  // MUSPEC_H5_SUMMARY_READ=off reads record by record (benchmarks, debugging a store).
  if (const char* env = std::getenv("MUSPEC_H5_SUMMARY_READ"); env != nullptr && std::string(env) == "off") return std::nullopt;
  try {
    if (!h5::link_exists(root, "summary")) return std::nullopt;
    {
      Id g = h5::open_group(root, "summary");
      if (!h5::has_attr(g.get(), kMarker) || h5::read_attr_i64(g.get(), kMarker) != kMarkerVersion) return std::nullopt;
    }
    // Marked complete: from here on a Failure means the columns are damaged.
    try {
      return read_all(root, spectra, count, with_sigma);
    } catch (const Failure&) {
      g_column_read_failures.fetch_add(1, std::memory_order_relaxed);
      throw;
    }
  } catch (const Failure&) {
    return std::nullopt;  // the per-record path reads the file and reports any problem
  }
}

std::string tensor_shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s;
}

std::vector<int64_t> parse_tensor_shape(const std::string& text) {
  std::vector<int64_t> shape;
  if (text.empty()) return shape;
  size_t at = 0;
  while (true) {
    const size_t end = std::min(text.find('x', at), text.size());
    if (end == at || end - at > 18) throw Failure("bad tensor_shape text");
    int64_t v = 0;
    for (size_t k = at; k < end; ++k) {
      if (text[k] < '0' || text[k] > '9') throw Failure("bad tensor_shape text");
      v = v * 10 + (text[k] - '0');
    }
    shape.push_back(v);
    if (end == text.size()) return shape;
    at = end + 1;
    if (shape.size() > 64) throw Failure("bad tensor_shape text");
  }
}

}  // namespace muspec::store_detail
