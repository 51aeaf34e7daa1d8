// muspec scan PATH... -o spectra.h5 [--summary table.csv] [--json summary.json] ...
#include <CLI/CLI.hpp>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/scan_parts.h"
#include "core/atomic_file.h"
#include "core/build_config.h"
#include "core/error.h"
#include "core/memory_budget.h"
#include "io/tensor_source.h"
#include "model/optimizer_state.h"
#include "report/progress.h"
#include "report/scan_report.h"
#include "scan/mpi_scan.h"
#include "scan/scan.h"
#include "spectra/cpu/cpu_backend.h"
#include "store/spectra_store.h"

namespace muspec::cli {

namespace {

struct ScanArgs {
  ScanOptions scan;
  std::string h5_out, csv_out, json_out, method = "auto", device = "auto", transform = "none";
  bool quiet = false, list_ignored = false;
  size_t max_rows = 60;
  std::vector<std::string> op_rules;
  std::string manifest;
  std::string memory_budget;
  std::string command_line;
  std::string shard;
  bool resume = false, no_journal = false;
};

std::string now_iso8601() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

/// The short category of an "ignored" reason, for the one-line tally.
std::string ignore_category(const std::string& reason) {
  for (const char* k : {"not selected", "1-D", "scalar", "too small", "empty", "dtype"})
    if (reason.find(k) != std::string::npos) return k;
  return "other";
}

void report_issues(const ScanResult& r, const ScanArgs& a) {
  for (const auto& n : r.notices)  // notices that start with "warning: " are warnings
    std::cerr << (n.compare(0, 9, "warning: ") == 0 ? "muspec: " : "muspec: note: ") << n << "\n";
  for (const auto& s : r.skipped)
    std::cerr << "muspec: skipped " << s.file << (s.tensor.empty() ? "" : ": tensor '" + s.tensor + "'") << ": "
              << s.reason << "\n";
  if (r.ignored.empty() || (a.quiet && !a.list_ignored)) return;  // what the user asked to list is listed
  if (a.list_ignored) {
    for (const auto& s : r.ignored) std::cerr << "muspec: ignored " << s.file << ": '" << s.tensor << "': " << s.reason << "\n";
    return;
  }
  std::map<std::string, int> tally;
  for (const auto& s : r.ignored) ++tally[ignore_category(s.reason)];
  std::cerr << "muspec: ignored " << r.ignored.size() << " tensors that are not matrices to analyse (";
  bool first = true;
  for (const auto& [k, n] : tally) std::cerr << (first ? "" : ", ") << n << " " << k, first = false;
  std::cerr << "); --list-ignored names them\n";
}

/// Why nothing was analysed when no input was skipped: what the --kind selection left out and
/// how to select it, or which files held no matrix at all.
std::string nothing_matched_reason(const ScanResult& r, const ScanArgs& a) {
  if (!r.skipped.empty()) return "";
  std::map<std::string, int> unselected;  // kind -> tensors
  std::set<std::string> files;
  for (const auto& s : r.ignored) {
    files.insert(s.file);
    const size_t q = s.reason.find("optimizer state '");
    if (q != std::string::npos && s.reason.find("not selected") != std::string::npos)
      ++unselected[state_kind(s.reason.substr(q + 17, s.reason.find('\'', q + 17) - q - 17))];
    else if (s.reason.rfind("weights not selected", 0) == 0)
      ++unselected["weights"];
  }
  if (!unselected.empty()) {
    std::string kinds;
    for (const auto& [k, n] : unselected) kinds += (kinds.empty() ? "" : ", ") + k + " (" + std::to_string(n) + " tensors)";
    return ": --kind " + a.scan.labels.kind + " selected nothing; the inputs hold " + kinds + ": choose one with --kind " +
           unselected.begin()->first + " (or --kind all)";
  }
  if (r.ignored.empty()) return ": the inputs hold no tensors";
  std::string names;
  for (const auto& f : files) names += (names.empty() ? "" : ", ") + f;
  return ": no 2-D floating-point tensor in " + names + " (--list-ignored says why each tensor was left out)";
}

/// All of -o, --summary and --json, or none of them (core/atomic_file.h).
void write_outputs(const ScanResult& r, const ScanArgs& a) {
  OutputTransaction outputs;
  if (!a.h5_out.empty()) {
    SpectraFile f;
    f.records = r.records;
    f.attributes = {{"muspec_version", kVersion}, {"created", now_iso8601()}, {"command", a.command_line},
                    {"backend", r.backend}, {"quantiles", nlohmann::json(a.scan.quantiles).dump()}};
    if (a.scan.shard.active()) add_part_attributes(f, r, a.scan.shard);  // cli/scan_parts.h
    write_spectra_h5(a.h5_out, f);
  }
  if (!a.csv_out.empty()) write_file_atomically(a.csv_out, summary_csv(r.records, a.scan.quantiles));
  if (!a.json_out.empty()) write_file_atomically(a.json_out, summary_json(r.records, a.scan.quantiles).dump(2) + "\n");
  outputs.commit();
}

/// Files a scan reads inside the directories it is given: tensor files and the metadata
/// beside them (docs/runs.md). An output there would replace an input.
bool scan_reads(const std::string& path) {
  const std::string name = std::filesystem::path(path).filename().string();
  return is_tensor_file_name(path) || name == "config.json" || name == "trainer_state.json" || name == "muspec-run.json";
}

void check_scan_paths(const ScanArgs& a) {
  std::vector<NamedPath> inputs = {{"--manifest", a.manifest}, {"--param-map", a.scan.labels.param_map}};
  for (const auto& p : a.scan.paths) inputs.push_back({"input", p});
  check_paths(inputs, {{"-o", a.h5_out}, {"--summary", a.csv_out}, {"--json", a.json_out}}, scan_reads);
}

int scan_and_write(ScanArgs& a, MpiSession* mpi);
bool write_scan(const ScanResult& r, ScanArgs& a);
void join_mpi_scan(ScanArgs& a, MpiSession& mpi);

int run_scan_command(ScanArgs& a) {
  check_scan_paths(a);
  if (!a.memory_budget.empty()) set_memory_budget(parse_byte_size(a.memory_budget, "--memory-budget"), "--memory-budget");
  a.scan.method = parse_method(a.method);
  a.scan.device = parse_device(a.device);
  if (a.transform == "none") a.scan.transform = InputTransform::None;
  else if (a.transform == "sign") a.scan.transform = InputTransform::Sign;
  else throw UsageError("--transform: expected none or sign, got '" + a.transform + "'");
  if (a.scan.quantiles.empty()) a.scan.quantiles = default_quantiles();
  for (const auto& r : a.op_rules) a.scan.labels.op_rules.push_back(parse_op_rule(r));
  if (!a.manifest.empty()) a.scan.labels.sweep = read_sweep_manifest(a.manifest);

  if (!a.shard.empty()) a.scan.shard = parse_shard(a.shard);
  // Started as several MPI ranks (scan/mpi_scan.h); an explicit --shard means the user splits the scan.
  const bool mpi_launch = mpi_world_size_from_env() > 1 && !a.scan.shard.active();
  // The note about a missing journal is one run's note: rank 0 prints it, not every rank.
  a.scan.journal = journal_path(a.h5_out, a.csv_out, a.json_out, a.no_journal, a.resume,
                                !mpi_launch || launch_from_env().rank == 0);  // cli/scan_parts.h
  if (!mpi_launch) {
    a.scan.gpu_index = launch_from_env().local_rank;  // srun tasks on one node: one GPU each
    return scan_and_write(a, nullptr);
  }
  MpiSession mpi;  // without MPI: NotAvailableError on every rank, nothing written
  join_mpi_scan(a, mpi);
  try {
    return scan_and_write(a, &mpi);
  } catch (const std::exception& err) {
    // One rank's error ends the job (the others may be waiting for it); the journal stays.
    std::cerr << "muspec: error: MPI rank " << mpi.rank() << " of " << mpi.size() << ": " << err.what() << "\n";
    mpi.abort(kExitFatal);
  }
}

/// Scans (every matrix, or this rank's share of them), and on rank 0 (or without MPI) writes the outputs.
int scan_and_write(ScanArgs& a, MpiSession* mpi) {
  // files -> matrices -> spectra, with a progress bar on stderr
  Progress progress(Progress::style_for(stderr, a.quiet), stderr);
  const ScanResult r = run_scan(a.scan, &progress);
  if (mpi && mpi->rank() != 0) return kExitOk;  // rank 0 has this rank's records, reports and writes
  if (!write_scan(r, a)) return kExitFatal;
  return r.skipped.empty() ? kExitOk : kExitSkipped;
}

/// Reports, writes the outputs and removes the journal; false when there was nothing to write.
bool write_scan(const ScanResult& r, ScanArgs& a) {
  report_issues(r, a);
  size_t analysed = 0;
  for (const auto& rec : r.records) analysed += rec.sigma.empty() ? 0 : 1;
  if (r.records.empty() && !a.scan.shard.active()) {  // a part may hold nothing: merge still needs it
    std::cerr << "muspec: error: no matrix was analysed" << nothing_matched_reason(r, a) << "; no output written\n";
    // Nothing was analysed, so the journal holds nothing worth resuming; left behind it would
    // refuse the next scan to this output as "another scan".
    if (!a.scan.journal.empty()) std::remove(a.scan.journal.c_str());
    return false;
  }
  write_outputs(r, a);
  if (!a.scan.journal.empty()) std::remove(a.scan.journal.c_str());  // the outputs hold everything now
  if (!a.quiet) {
    std::cout << summary_table(r.records, a.scan.quantiles, a.max_rows);
    std::cout << analysed << " matrices analysed with " << r.backend << "; '*' marks matrices with singular values "
              << "under the method's reliable floor\n";
  }
  return true;
}

/// `mpirun -n N muspec scan`: rank 0 hands out the matrices and keeps the one journal; every
/// rank computes with its share of this machine's cores (scan/scan_cluster.h).
void join_mpi_scan(ScanArgs& a, MpiSession& mpi) {
  if (a.scan.threads <= 0) a.scan.threads = std::max(1, hardware_threads() / mpi.local_size());  // no oversubscription
  a.scan.gpu_index = mpi.local_rank();  // one GPU per local rank (spectra/gpu_choice.h)
  if (mpi.rank() != 0) a.scan.journal.clear(), a.quiet = true;  // journal, progress and table on rank 0 only
  a.scan.cluster = &mpi;
}

}  // namespace

Action setup_scan(CLI::App& sub) {
  auto a = std::make_shared<ScanArgs>();
  sub.add_option("paths", a->scan.paths,
                 "checkpoint files (.safetensors, sharded .safetensors.index.json, torch.save files .pt/.pth/.bin/.ckpt, "
                 ".npy, .npz) or directories")
      ->required();
  sub.add_option("-o,--output", a->h5_out, "write all spectra to this HDF5 file (docs/spectra-h5.md)");
  sub.add_option("--summary", a->csv_out, "write the per-matrix summary as CSV");
  sub.add_option("--json", a->json_out, "write the per-matrix summary as JSON");
  sub.add_option("--include", a->scan.include_regex, "only tensors whose name matches this regex");
  sub.add_option("--exclude", a->scan.exclude_regex, "skip tensors whose name matches this regex");
  sub.add_option("--quantiles", a->scan.quantiles, "quantile levels, comma-separated (default 0.01,...,0.99)")
      ->delimiter(',');
  sub.add_option("--method", a->method, "auto | svd | gram | gram32 (auto: gram, svd when sigma_min is under gram's floor; "
                 "gram32: float32 Gram, CPU only, floor ~2e-2 sigma_max, never chosen by auto)")
      ->capture_default_str();
  sub.add_option("--device", a->device, "auto | cpu | cuda")->capture_default_str();
  sub.add_option("--transform", a->transform, "none | sign (element-wise sign, as AdaMuon feeds NS)")->capture_default_str();
  sub.add_option("--threads", a->scan.threads, "worker threads (default: all cores)");
  sub.add_option("--gpu-streams", a->scan.gpu_streams, "CUDA: matrices in flight at once, one stream each (default 8)")
      ->check(CLI::Range(1, 64));
  sub.add_option("--min-dim", a->scan.min_dim, "ignore matrices whose smaller side is below this")->capture_default_str();
  sub.add_option("--kind", a->scan.labels.kind,
                 "weights | momentum | exp_avg | exp_avg_sq | all (auto: momentum where the optimizer state has it, else exp_avg, "
                 "else weights)")
      ->capture_default_str();
  sub.add_option("--manifest", a->manifest, "run manifests of a whole sweep (JSON list; see docs/runs.md)");
  sub.add_option("--param-map", a->scan.labels.param_map, "JSON list of parameter names in optimizer id order");
  sub.add_option("--recipe", a->scan.labels.recipe,
                 "optimizer id order: plain | hf-trainer | nanogpt | muon | muon-sorted | muon-then-adam | kj-aux | muon-first "
                 "(default: every recipe is tried against the shapes and group sizes)");
  sub.add_option("--layers", a->scan.labels.layers, "blocks in the model (default: config.json, model_args, manifest, else inferred)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--family", a->scan.labels.family,
                 "naming family (llama, meta-llama, phi3, gpt2, gpt_neox, nanogpt, olmo, olmo-core, modded-nanogpt, megatron)");
  sub.add_option("--op-rule", a->op_rules,
                 "REGEX=op[,muon|,no-muon] or REGEX=muon|no-muon: operator type and/or Muon eligibility override, e.g. "
                 "'attn\\.wqkv=qkv' (repeatable)");
  sub.add_option("--param-count", a->scan.labels.param_count, "total | non-embedding: model size when no manifest states it")
      ->capture_default_str();
  sub.add_flag("--split-fused", a->scan.labels.split_fused,
               "analyse the q/k/v and gate/up parts of fused tensors separately (needs config.json)");
  sub.add_option("--max-rows", a->max_rows, "rows of the table printed on the terminal (0 = all)")->capture_default_str();
  sub.add_flag("--list-ignored", a->list_ignored, "name every tensor that is not a matrix to analyse");
  sub.add_option("--memory-budget", a->memory_budget,
                 "largest allocation decoding may ask for, e.g. 8G (default: MemAvailable or the cgroup limit; "
                 "env MUSPEC_MEMORY_BUDGET)");
  sub.add_option("--shard", a->shard, "scan only the I-th of N cost-balanced parts, e.g. 2/8 (join them with muspec merge)");
  sub.add_flag("--resume", a->resume,
               "continue an interrupted scan from its journal (OUTPUT.journal); a matching journal is resumed anyway, "
               "with a note");
  sub.add_flag("--no-journal", a->no_journal, "keep no journal (a killed scan starts over)");
  sub.add_flag("-q,--quiet", a->quiet, "no progress and no table on the terminal (errors still go to stderr)");
  return [a] {
    a->command_line = "muspec scan";
    for (const auto& p : a->scan.paths) a->command_line += " " + p;
    return run_scan_command(*a);
  };
}

}  // namespace muspec::cli
