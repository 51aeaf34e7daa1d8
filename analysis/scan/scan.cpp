#include "scan/scan.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <regex>
#include <tuple>

#include "core/error.h"
#include "core/memory_budget.h"
#include "core/parallel.h"
#include "io/bus_guard.h"
#include "io/discover.h"
#include "io/pickle_danger.h"
#include "io/tensor_source.h"
#include "report/progress.h"
#include "scan/file_watch.h"
#include "scan/scan_cluster.h"
#include "scan/scan_plan.h"
#include "scan/scan_scheduler.h"
#include "spectra/cpu/cpu_backend.h"
#include "spectra/layer_metrics.h"
#include "spectra/summary.h"

namespace muspec {

namespace {

/// One tensor to analyse: a matrix, or every 2-D slice of a stack.
struct TensorJob {
  const TensorSource* source;
  const SourceLabels* labels;
  size_t entry;
  int64_t rows, cols, slices;
  uint64_t bytes;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string slice_name(const std::string& tensor, int64_t slice) {
  return slice < 0 ? tensor : tensor + "[" + std::to_string(slice) + "]";
}

/// Why a tensor is not analysed, or empty when it is.
std::string reason_to_ignore(const TensorEntry& e, const ScanOptions& o) {
  if (!e.dtype) return e.unsupported.empty() ? "dtype " + e.dtype_label + " is not supported" : e.unsupported;
  if (!dtype_is_decodable_float(*e.dtype)) return "dtype " + std::string(dtype_name(*e.dtype)) + " is not a real floating type";
  if (e.shape.size() < 2) return e.shape.empty() ? "scalar" : "1-D tensor " + shape_text(e.shape);
  const int64_t rows = e.shape[e.shape.size() - 2], cols = e.shape.back();
  for (int64_t d : e.shape)
    if (d == 0) return "empty tensor " + shape_text(e.shape);
  if (std::min(rows, cols) < o.min_dim)
    return "too small: " + std::to_string(rows) + "x" + std::to_string(cols) + " (--min-dim " + std::to_string(o.min_dim) + ")";
  return "";
}

/// Admits a matrix's decoded size against the memory budget before anything is allocated
/// (core/memory_budget.h): a float64 copy of one slice and as much again for the solver. This
/// is what stops a tiny file declaring a huge view (a stride-0 expand() of 32768x32768 in a
/// 632-byte .pt): such views are legal torch files and analysed like any matrix when they fit.
std::string over_budget(const TensorJob& job) {
  const uint64_t bytes = 2 * static_cast<uint64_t>(job.rows) * static_cast<uint64_t>(job.cols) * sizeof(double);
  try {
    admit_allocation(bytes, "", "", "a float64 copy of the " + std::to_string(job.rows) + "x" + std::to_string(job.cols) +
                                        " matrix and the solver's workspace");
  } catch (const InputError& err) {
    return err.reason();
  }
  return "";
}

/// Once per file: its pickle names callables that would run code under Python's unpickler.
void warn_dangerous_callables(const std::string& file, const std::vector<std::string>& names, ScanResult& result) {
  if (names.empty()) return;
  std::string list;
  for (size_t i = 0; i < names.size() && i < 5; ++i) list += (i ? ", " : "") + names[i];
  if (names.size() > 5) list += ", ... (" + std::to_string(names.size()) + " in all)";
  result.notices.push_back("warning: " + file + ": its pickle tries to call " + list +
                           ". muspec never runs pickled code, but torch.load(weights_only=False) or pickle.load on "
                           "this file would: do not load it in Python");
}

std::vector<TensorJob> select_tensors(const std::vector<std::unique_ptr<TensorSource>>& sources,
                                      const std::vector<SourceLabels>& labels, const ScanOptions& o, ScanResult& result) {
  const std::regex include(o.include_regex.empty() ? "" : o.include_regex);
  const std::regex exclude(o.exclude_regex.empty() ? "$^" : o.exclude_regex);
  std::vector<TensorJob> jobs;
  for (size_t si = 0; si < sources.size(); ++si) {
    const auto& src = sources[si];
    const auto& entries = src->entries();
    for (size_t i = 0; i < entries.size(); ++i) {
      const TensorEntry& e = entries[i];
      if (!o.include_regex.empty() && !std::regex_search(e.name, include)) continue;
      if (!o.exclude_regex.empty() && std::regex_search(e.name, exclude)) continue;
      std::string why = labels[si].tensors[i].skip_reason;
      if (why.empty()) why = reason_to_ignore(e, o);
      if (!why.empty()) {
        // An object array may hold the data the user expected: say so as a skip, not a silent ignore.
        (!e.dtype && e.unsupported.find("pickle") != std::string::npos ? result.skipped : result.ignored).push_back({e.file, e.name, why});
        continue;
      }
      TensorJob job{src.get(), &labels[si], i, e.shape[e.shape.size() - 2], e.shape.back(), 1, e.nbytes};
      bool overflow = false;
      for (size_t d = 0; d + 2 < e.shape.size(); ++d) overflow |= __builtin_mul_overflow(job.slices, e.shape[d], &job.slices);
      if (overflow || job.rows > (int64_t{1} << 31) / std::max<int64_t>(1, job.cols)) {  // > 2^31 elements per matrix
        result.skipped.push_back({e.file, e.name, "shape " + shape_text(e.shape) + " is too large to analyse"});
        continue;
      }
      if (std::string why_not = over_budget(job); !why_not.empty()) {
        result.skipped.push_back({e.file, e.name, std::move(why_not)});
        continue;
      }
      jobs.push_back(job);
    }
  }
  return jobs;
}

struct JobOutcome {
  std::vector<SpectrumRecord> records;
  std::vector<ScanIssue> skipped;
};

SpectrumRecord base_record(const TensorEntry& e, const SourceLabels& sl, const TensorLabel& L, int64_t slice, int64_t rows,
                           int64_t cols, const ScanOptions& o) {
  SpectrumRecord r;
  r.run = sl.context.run;
  r.step = sl.context.step;
  r.model_params = sl.model_params;
  r.params_source = sl.params_source;
  r.kind = L.kind;
  r.parameter = L.parameter;
  r.op_type = L.op_type;
  r.layer = L.layer;
  r.num_layers = L.num_layers;
  r.rel_depth = L.rel_depth;
  r.muon = L.muon;
  r.transposed = L.transposed;
  if (L.transposed) std::swap(rows, cols);  // singular values do not depend on orientation
  r.tensor = e.name;
  r.slice = e.shape.size() > 2 ? slice : -1;
  r.name = slice_name(L.parameter.empty() ? e.name : L.parameter, r.slice);
  r.file = e.file;
  r.rows = rows;
  r.cols = cols;
  r.tensor_shape = e.shape;
  r.dtype = std::string(dtype_name(*e.dtype));
  r.transform = o.transform == InputTransform::Sign ? "sign" : "none";
  return r;
}

/// The rows (axis 0) or columns (axis 1) of a dense row-major matrix that make up one part of
/// a fused tensor.
std::vector<double> gather_part(const std::vector<double>& x, int64_t rows, int64_t cols, const FusedPart& part) {
  const std::vector<int64_t> idx = part.index.indices();
  std::vector<double> out;
  if (part.axis == 0) {
    out.reserve(idx.size() * static_cast<size_t>(cols));
    for (int64_t r : idx) out.insert(out.end(), x.begin() + r * cols, x.begin() + (r + 1) * cols);
  } else {
    out.reserve(idx.size() * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c : idx) out.push_back(x[static_cast<size_t>(r * cols + c)]);
  }
  return out;
}

/// Completes `rec` with its singular values and summary, and keeps it.
void add_analysed(SpectrumRecord rec, SingularValues sv, double frobenius, const ScanOptions& o, JobOutcome& out) {
  rec.method = method_name(sv.method);
  rec.device = device_name(sv.device);
  rec.floor = sv.floor;
  rec.sigma = std::move(sv.sigma);
  rec.summary = summarize_spectrum(rec.sigma, frobenius, rec.floor, o.quantiles);
  rec.layer_metrics = compute_layer_metrics(rec.sigma, rec.rows, rec.cols, rec.floor);
  out.records.push_back(std::move(rec));
}

void analyse(SpectrumRecord rec, std::vector<double>& x, int64_t rows, int64_t cols, double frobenius,
             SpectralBackend& backend, const ScanOptions& o, JobOutcome& out) {
  try {
    SingularValues sv = backend.singular_values(x, rows, cols, o.method, rec.file + ": " + rec.name);
    add_analysed(std::move(rec), std::move(sv), frobenius, o, out);
  } catch (const NumericalError& err) {
    out.skipped.push_back({rec.file, rec.name, err.what()});
  }
}

/// A record for a matrix with NaN/Inf entries: kept (so the count is in the outputs), not analysed.
void record_nonfinite(SpectrumRecord rec, int64_t nonfinite, JobOutcome& out) {
  rec.nonfinite = nonfinite;
  out.skipped.push_back({rec.file, rec.name, std::to_string(nonfinite) + " non-finite entries (NaN/Inf); not analysed"});
  out.records.push_back(std::move(rec));
}

/// One whole matrix, decoded by the backend (on the GPU for a CUDA backend).
void analyse_stored(SpectrumRecord rec, const MatrixView& m, SpectralBackend& backend, const ScanOptions& o,
                    JobOutcome& out) {
  try {
    StoredSpectrum st = backend.spectrum_of_stored(m, o.transform, o.method, rec.file + ": " + rec.name);
    if (!st.values) return record_nonfinite(std::move(rec), st.conversion.nonfinite, out);
    add_analysed(std::move(rec), std::move(*st.values), st.conversion.frobenius, o, out);
  } catch (const NumericalError& err) {
    out.skipped.push_back({rec.file, rec.name, err.what()});
  }
}

/// --split-fused: each part of a fused tensor (q/k/v rows, gate/up halves) is its own matrix.
void analyse_parts(const SpectrumRecord& rec, const MatrixView& m, const std::vector<FusedPart>& parts,
                   SpectralBackend& backend, const ScanOptions& o, JobOutcome& out) {
  std::vector<double> x(static_cast<size_t>(m.rows * m.cols));
  const DenseConversion conv = to_dense_row_major(m, o.transform, x.data());
  if (conv.nonfinite > 0) return record_nonfinite(rec, conv.nonfinite, out);
  for (const FusedPart& part : parts) {
    SpectrumRecord pr = rec;
    pr.op_type = operator_type_name(part.op);
    pr.name = rec.name + ":" + pr.op_type;
    std::vector<double> px = gather_part(x, m.rows, m.cols, part);
    const int64_t prow = part.axis == 0 ? part.index.size() : m.rows, pcol = part.axis == 0 ? m.cols : part.index.size();
    pr.rows = pr.transposed ? pcol : prow;
    pr.cols = pr.transposed ? prow : pcol;
    double sumsq = 0;
    for (double v : px) sumsq += v * v;
    analyse(std::move(pr), px, prow, pcol, std::sqrt(sumsq), backend, o, out);
  }
}

JobOutcome analyse_slices(const TensorJob& job, SpectralBackend& backend, const ScanOptions& o);

/// Loads, converts and analyses every slice of one tensor; drops what was computed when the
/// file changed under the read (a SIGBUS on its mapping, or a new size or mtime).
JobOutcome run_job(const TensorJob& job, SpectralBackend& backend, const ScanOptions& o, const FileWatch& watch) {
  const uint64_t faults = bus_faults_on_this_thread();
  JobOutcome out = analyse_slices(job, backend, o);
  const TensorEntry& e = job.source->entries()[job.entry];
  std::string changed = bus_faults_on_this_thread() != faults ? kTruncatedDuringScan : watch.change(e.file);
  if (changed.empty()) return out;
  JobOutcome dropped;
  dropped.skipped.push_back({e.file, e.name, std::move(changed)});
  return dropped;
}

/// Loads, converts and analyses every slice of one tensor. Never throws for input problems.
JobOutcome analyse_slices(const TensorJob& job, SpectralBackend& backend, const ScanOptions& o) {
  JobOutcome out;
  const TensorEntry& e = job.source->entries()[job.entry];
  const auto& parts = job.labels->tensors[job.entry].parts;
  for (int64_t s = 0; s < job.slices; ++s) {
    SpectrumRecord rec = base_record(e, *job.labels, job.labels->tensors[job.entry], s, job.rows, job.cols, o);
    rec.device = device_name(backend.device());
    const ShardingInfo sharding = job.source->sharding();
    rec.sharded = sharding.format;
    rec.shards = sharding.shards;
    try {
      // The handle (and its memory map) lives only while this matrix is analysed, so a scan's
      // resident memory stays near one matrix per worker, whatever the checkpoint size.
      TensorHandle h = job.source->load(job.entry);
      const MatrixView m = matrix_of(h.view, s);
      if (parts.empty())
        analyse_stored(std::move(rec), m, backend, o, out);
      else
        analyse_parts(rec, m, parts, backend, o, out);
    } catch (const InputError& err) {
      out.skipped.push_back({err.file().empty() ? e.file : err.file(), e.name, err.reason()});
      return out;  // the whole tensor is unreadable: no point trying the other slices
    } catch (const std::bad_alloc&) {
      // The float64 copy and the solver's workspace did not fit in host memory: this matrix is
      // skipped, the scan goes on (smaller matrices, other workers) and says so.
      const double mib = static_cast<double>(job.rows) * static_cast<double>(job.cols) * 8.0 / (1 << 20);
      out.skipped.push_back({e.file, e.name, "not enough host memory to analyse it (its float64 copy alone is " +
                                                 std::to_string(static_cast<int64_t>(mib)) + " MiB)"});
      return out;
    }
  }
  return out;
}

/// The cost model of scan/scan_scheduler.h decides which matrices run alone on every BLAS
/// thread and which side by side with one thread each.
void run_on_cpu(const std::vector<TensorJob>& jobs, int threads, const std::function<void(size_t)>& run_one) {
  std::vector<MatrixShape> shapes;
  for (const auto& j : jobs) shapes.push_back({j.rows, j.cols, j.slices});
  run_cpu_schedule(plan_cpu_schedule(shapes, threads), threads, run_one);
}

/// What a matrix stack's records will say before it is read (scan/scan_plan.h).
std::vector<MatrixIdentity> identities(const std::vector<TensorJob>& jobs, const ScanOptions& o) {
  std::vector<MatrixIdentity> out;
  for (const TensorJob& j : jobs) {
    const TensorEntry& e = j.source->entries()[j.entry];
    const TensorLabel& L = j.labels->tensors[j.entry];
    const SpectrumRecord r = base_record(e, *j.labels, L, 0, j.rows, j.cols, o);
    Fingerprint f;
    f.add(r.name).add(r.tensor).add(r.file).add(r.rows).add(r.cols).add(r.dtype).add(r.transform).add(r.run).add(r.step);
    f.add(r.model_params).add(r.params_source).add(r.kind).add(r.parameter).add(r.op_type).add(r.layer).add(r.num_layers);
    f.add(r.rel_depth).add(int64_t{r.muon}).add(int64_t{r.transposed}).add(j.slices).add(static_cast<int64_t>(L.parts.size()));
    for (int64_t d : e.shape) f.add(d);
    out.push_back({f.hex(), e.file, matrix_cost(j.rows, j.cols, j.slices)});
  }
  return out;
}

/// Computes matrices `which` of `all` on the backend: on a GPU one worker per stream, so reading
/// and decoding one matrix on the host overlaps the transfer and the GPU work of the others
/// (CPU fallbacks share the cores); on the CPU as scan/scan_scheduler.h plans it.
void compute_matrices(const std::vector<TensorJob>& all, const std::vector<size_t>& which, SpectralBackend& backend,
                      int threads, const std::function<void(size_t)>& run_one) {
  auto one = [&](size_t k) { run_one(which[k]); };
  if (const int in_flight = backend.preferred_concurrency(); in_flight > 0) {
    set_blas_threads(std::max(1, threads / in_flight));
    parallel_for(which.size(), in_flight, one);
    return;
  }
  std::vector<TensorJob> jobs;
  for (size_t i : which) jobs.push_back(all[i]);
  run_on_cpu(jobs, threads, one);
}

/// What scan/scan_cluster.h needs of this scan: every matrix's cost and file, the work left, and
/// how to compute, send and take in a matrix's outcome.
ClusterWork cluster_work(const std::vector<MatrixIdentity>& matrices, const ScanPlan& plan, SpectralBackend& backend,
                         int threads, std::function<void(const std::vector<size_t>&)> compute,
                         std::vector<JobOutcome>& outcomes, const std::function<void(size_t)>& finished) {
  ClusterWork w;
  std::map<std::string, int> file_ids;
  for (const auto& m : matrices) {
    w.costs.push_back(m.cost);
    w.files.push_back(file_ids.emplace(m.file, static_cast<int>(file_ids.size())).first->second);
  }
  w.todo = plan.todo;
  w.fingerprint = plan.fingerprint;
  w.slots = static_cast<size_t>(std::max(threads, backend.preferred_concurrency()));
  w.compute = std::move(compute);
  w.encode = [&outcomes](size_t i) {  // sent to rank 0, then forgotten here
    std::string bytes = encode_journal_entry({static_cast<int64_t>(i), outcomes[i].records, outcomes[i].skipped});
    outcomes[i] = JobOutcome{};
    return bytes;
  };
  w.accept = [&outcomes, finished](JournalEntry&& e) {
    const size_t i = static_cast<size_t>(e.matrix);
    outcomes[i] = {std::move(e.records), std::move(e.skipped)};
    finished(i);
  };
  return w;
}

void validate(const ScanOptions& o) {
  for (double q : o.quantiles)
    if (!(q >= 0 && q <= 1)) throw UsageError("--quantiles: " + std::to_string(q) + " is outside [0, 1]");
  for (const auto* re : {&o.include_regex, &o.exclude_regex}) {
    try {
      std::regex test(*re);
    } catch (const std::regex_error& err) {
      throw UsageError("invalid regular expression '" + *re + "': " + err.what());
    }
  }
  if (o.min_dim < 1) throw UsageError("--min-dim must be at least 1");
}

}  // namespace

ScanResult run_scan(const ScanOptions& o, Progress* progress) {
  validate(o);
  ScanResult result;
  const int threads = o.threads > 0 ? o.threads : hardware_threads();
  std::string notice;
  auto backend = make_backend(BackendOptions{o.device, threads, o.gpu_streams, o.gpu_index}, &notice);
  if (!notice.empty()) result.notices.push_back(notice);
  result.backend = backend->description();

  // Stage 1: find and open the files; a bad file is reported and the scan goes on.
  DiscoveredFiles found = discover_tensor_files(o.paths);
  for (const auto& p : found.problems) result.skipped.push_back({p.substr(0, p.find(": ")), "", p.substr(p.find(": ") + 2)});
  for (const auto& p : found.ignored) result.notices.push_back("ignored " + p);
  std::vector<std::unique_ptr<TensorSource>> sources;
  FileWatch watch;
  for (const auto& f : found.files) {
    try {
      watch.remember(f);
      const uint64_t faults = bus_faults_on_this_thread();
      pickle::DangerousCallableLog dangerous;
      auto source = open_tensor_file(f);
      warn_dangerous_callables(f, dangerous.names(), result);
      if (bus_faults_on_this_thread() != faults) throw InputError(f, "", "the file changed during the scan: it was truncated while its header was read");
      for (const auto& e : source->entries()) watch.remember(e.file);
      sources.push_back(std::move(source));
      if (sources.back()->entries().empty()) result.ignored.push_back({f, "", "the file holds no tensors"});
      for (const auto& u : sources.back()->unreadable()) result.skipped.push_back({f, u.tensor, u.reason});
    } catch (const InputError& err) {
      result.skipped.push_back({err.file().empty() ? f : err.file(), err.tensor(), err.reason()});
    }
  }

  // Stage 2: label every tensor (run, step, kind, parameter, operator, layer), choose the matrices.
  const std::vector<SourceLabels> labels = label_sources(sources, o.labels, result.notices);
  const std::vector<TensorJob> all_jobs = select_tensors(sources, labels, o, result);
  // Stage 2b: this process's part (--shard), less what the journal has (scan/scan_plan.h).
  const std::vector<MatrixIdentity> matrices = identities(all_jobs, o);
  ScanPlan plan = plan_scan(o, matrices, result.notices);
  result.fingerprint = plan.fingerprint;
  result.matrices = static_cast<int64_t>(all_jobs.size());
  uint64_t total_bytes = 0;
  for (size_t i : plan.todo) total_bytes += all_jobs[i].bytes;
  const bool reports = !o.cluster || o.cluster->rank() == 0;  // MPI: rank 0 shows every rank's progress
  if (progress && reports) progress->start(static_cast<int64_t>(plan.todo.size()), total_bytes);

  // Stage 3: compute (here, or over MPI ranks: scan/scan_cluster.h).
  std::vector<JobOutcome> outcomes(all_jobs.size());
  for (auto& e : plan.done) outcomes[static_cast<size_t>(e.matrix)] = {std::move(e.records), std::move(e.skipped)};
  auto finished = [&](size_t i) {
    const JobOutcome& out = outcomes[i];
    if (plan.journal && worth_journaling(out.records, out.skipped))
      plan.journal->append({static_cast<int64_t>(i), out.records, out.skipped});
    if (progress && reports) progress->advance(all_jobs[i].bytes, all_jobs[i].source->entries()[all_jobs[i].entry].name);
  };
  auto run_one = [&](size_t i) {
    outcomes[i] = run_job(all_jobs[i], *backend, o, watch);
    finished(i);
  };
  const int saved_blas_threads = blas_threads();
  if (o.cluster) {
    run_cluster_scan(*o.cluster, cluster_work(matrices, plan, *backend, threads, [&](const std::vector<size_t>& which) {
      compute_matrices(all_jobs, which, *backend, threads, run_one);
    }, outcomes, finished));
  } else {
    compute_matrices(all_jobs, plan.todo, *backend, threads, run_one);
  }
  set_blas_threads(saved_blas_threads);
  if (plan.journal) plan.journal->sync();
  if (progress) progress->finish();
  for (auto& n : backend->notices()) result.notices.push_back(std::move(n));

  // Stage 4: gather in file order, then by run and step (file names sort checkpoint-100 before
  // checkpoint-25; steps are numbers).
  for (size_t i = 0; i < outcomes.size(); ++i) {
    for (auto& r : outcomes[i].records) result.records.push_back(std::move(r)), result.scan_order.push_back(static_cast<int64_t>(i));
    for (auto& s : outcomes[i].skipped) result.skipped.push_back(std::move(s));
  }
  order_records(result.records, result.scan_order);
  return result;
}

}  // namespace muspec
