// Spectra store read speed (issues 18 and 21): a synthetic store of N records (4 runs of
// different model sizes, steps of 36 layers x 7 op types x {weight, momentum}, K power-law
// singular values each), read back three ways in one run, interleaved over R rounds:
//   by_record     the record-by-record attribute read (MUSPEC_H5_SUMMARY_READ=off; what stores
//                 without the /summary marker, and muspec before it, get)
//   summary       the /summary columns plus each record's sigma (recommend, plan, ns eval, report)
//   summary_only  the /summary columns without sigma (fit)
// Each read runs as the commands do: libhdf5 in a forked child that sends the records back
// (store/isolated_read.h); each is also timed in-process (MUSPEC_H5_ISOLATION=off), the
// reference for what the isolation costs. Peak memory: the reading process's and its child's
// maximum resident set (getrusage).
//
//   muspec_bench_store [N] [K] [OUT_DIR] [R]    (defaults: 10000 1024 /tmp/muspec-bench-store 3)
//   MUSPEC_BENCH_REUSE=1 reads an existing OUT_DIR/spectra.h5 instead of writing a new one.
//
// Prints one JSON line with the median milliseconds of each, and leaves OUT_DIR/spectra.h5 for
// timing the commands (docs/benchmarks.md, "Store reads").
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "scan/synthetic.h"
#include "spectra/layer_metrics.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"

namespace {

double time_ms(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

muspec::SpectrumRecord synthetic_record(size_t i, size_t n, int64_t k) {
  static const char* ops[] = {"q", "k", "v", "o", "gate", "up", "down"};
  constexpr int64_t kLayers = 36, kRuns = 4;
  muspec::SpectrumRecord r;
  const int64_t run = static_cast<int64_t>(i * kRuns / n);
  const size_t j = i - static_cast<size_t>(run) * n / kRuns;  // index within the run
  const int64_t op = static_cast<int64_t>(j % 7), layer = static_cast<int64_t>(j / 7 % kLayers);
  const bool momentum = j / (7 * kLayers) % 2 == 1;
  const int64_t step = static_cast<int64_t>(j / (14 * kLayers)) * 100;
  r.op_type = ops[op];
  r.layer = layer, r.num_layers = kLayers, r.rel_depth = static_cast<double>(layer) / (kLayers - 1);
  r.name = r.tensor = r.parameter = "model.layers." + std::to_string(layer) + "." + ops[op] + "_proj.weight";
  r.kind = momentum ? "momentum" : "weight";
  r.run = "size" + std::to_string(run), r.step = step, r.file = "step" + std::to_string(step) + ".safetensors";
  r.model_params = int64_t{1} << (24 + 2 * run), r.params_source = "manifest", r.muon = true;
  r.rows = r.cols = k, r.tensor_shape = {k, k};
  r.dtype = "BF16", r.transform = "none", r.method = "gram", r.device = "cpu", r.floor = 1e-7;
  muspec::SpectrumSpec spec;
  spec.kind = muspec::SpectrumSpec::Kind::Power;
  spec.a = 0.3 + 0.02 * static_cast<double>(op) + 0.005 * static_cast<double>(layer) + 0.02 * static_cast<double>(run) +
           0.3 / (1.0 + static_cast<double>(step) / 100.0);
  r.sigma = muspec::make_spectrum(spec, k, i);
  double frob2 = 0;
  for (const double s : r.sigma) frob2 += s * s;
  r.summary = muspec::summarize_spectrum(r.sigma, std::sqrt(frob2), r.floor, muspec::default_quantiles());
  r.layer_metrics = muspec::compute_layer_metrics(r.sigma, r.rows, r.cols, r.floor);
  return r;
}

}  // namespace

/// One timed read of `store` in this process: prints "milliseconds records peak_kb child_peak_kb".
int read_once(const std::string& mode, const std::string& store, bool isolated) {
  if (mode == "by_record") ::setenv("MUSPEC_H5_SUMMARY_READ", "off", 1);
  if (!isolated) ::setenv("MUSPEC_H5_ISOLATION", "off", 1);
  muspec::SpectraReadOptions options;
  options.sigma = mode != "summary_only";
  size_t n = 0;
  const double ms = time_ms([&] { n = muspec::read_spectra_h5(store, options).records.size(); });
  rusage self {}, children {};
  ::getrusage(RUSAGE_SELF, &self);
  ::getrusage(RUSAGE_CHILDREN, &children);
  std::printf("%.3f %zu %ld %ld\n", ms, n, self.ru_maxrss, children.ru_maxrss);
  return 0;
}

struct Timings {
  std::vector<double> ms, peak_mb, child_peak_mb;
  nlohmann::json summary() const {
    return {{"ms", median(ms)}, {"peak_mb", median(peak_mb)}, {"child_peak_mb", median(child_peak_mb)}};
  }
};

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--read") return read_once(argv[2], argv[3], std::string(argv[4]) == "isolated");
  const size_t n = argc > 1 ? std::stoul(argv[1]) : 10000;
  const int64_t k = argc > 2 ? std::stol(argv[2]) : 1024;
  const std::filesystem::path dir = argc > 3 ? argv[3] : "/tmp/muspec-bench-store";
  const int rounds = argc > 4 ? std::stoi(argv[4]) : 3;
  std::filesystem::create_directories(dir);
  const std::string store = (dir / "spectra.h5").string();
  if (std::getenv("MUSPEC_BENCH_REUSE") == nullptr || !std::filesystem::exists(store)) {  // REUSE: time reads only
    muspec::SpectraFile f;
    f.attributes = {{"backend", "synthetic (bench_store)"}};
    for (size_t i = 0; i < n; ++i) f.records.push_back(synthetic_record(i, n, k));
    std::filesystem::remove(store);
    muspec::write_spectra_h5(store, f);
  }
  // Each read runs in a fresh process (this program, "--read MODE PATH"), as in the commands:
  // reading again in one process that already holds freed records makes the isolated probe's
  // forked child pay for copy-on-write pages, which no command does.
  std::map<std::string, Timings> timings;  // "MODE isolated" / "MODE in_process"
  size_t records = 0;
  for (int round = 0; round < rounds; ++round)
    for (const char* mode : {"by_record", "summary", "summary_only"})
      for (const char* how : {"isolated", "in_process"}) {
        const std::string cmd = "/proc/" + std::to_string(::getpid()) + "/exe --read " + mode + " '" + store + "' " + how;
        FILE* p = ::popen(cmd.c_str(), "r");
        double ms = NAN;
        unsigned long n_read = 0;
        long peak_kb = 0, child_kb = 0;
        if (p == nullptr || std::fscanf(p, "%lf %lu %ld %ld", &ms, &n_read, &peak_kb, &child_kb) != 4)
          return std::cerr << "cannot run " << cmd << "\n", 1;
        ::pclose(p);
        records = n_read;
        Timings& t = timings[std::string(mode) + " " + how];
        t.ms.push_back(ms), t.peak_mb.push_back(peak_kb / 1024.0), t.child_peak_mb.push_back(child_kb / 1024.0);
      }
  nlohmann::json out{{"records", records}, {"sigma_per_record", k}, {"store_bytes", std::filesystem::file_size(store)}, {"rounds", rounds}};
  for (const char* mode : {"by_record", "summary", "summary_only"}) {
    const Timings &iso = timings[std::string(mode) + " isolated"], &direct = timings[std::string(mode) + " in_process"];
    out[mode] = {{"isolated", iso.summary()}, {"in_process", direct.summary()}, {"isolated_over_in_process", median(iso.ms) / median(direct.ms)}};
  }
  std::cout << out.dump() << "\n";
  return 0;
}
