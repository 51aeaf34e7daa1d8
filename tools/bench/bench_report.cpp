// HTML report size and build time at scale (issue 18): a synthetic spectra store of N matrices
// (1 run, steps of 36 layers x 7 op types x {weight, momentum}, each spectrum K power-law
// singular values from analysis/scan/synthetic), then `muspec report`'s load + render.
//
//   muspec_bench_report [N] [K] [OUT_DIR]     (defaults: 10000 1024 /tmp/muspec-bench-report)
//
// Prints one JSON line: {"matrices", "sigma_per_matrix", "report_bytes", "load_ms", "render_ms"}
// and leaves OUT_DIR/spectra.h5 and OUT_DIR/report.html for a browser timing (docs/report.md).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "report/html_report.h"
#include "scan/synthetic.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"

namespace {

double time_ms(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

muspec::SpectrumRecord synthetic_record(size_t i, int64_t k) {
  static const char* ops[] = {"q", "k", "v", "o", "gate", "up", "down"};
  constexpr int64_t kLayers = 36;
  muspec::SpectrumRecord r;
  const int64_t op = static_cast<int64_t>(i % 7), layer = static_cast<int64_t>(i / 7 % kLayers);
  const bool momentum = i / (7 * kLayers) % 2 == 1;
  const int64_t step = static_cast<int64_t>(i / (14 * kLayers)) * 100;
  r.op_type = ops[op];
  r.layer = layer, r.num_layers = kLayers, r.rel_depth = static_cast<double>(layer) / (kLayers - 1);
  r.name = r.tensor = r.parameter = "model.layers." + std::to_string(layer) + "." + ops[op] + "_proj.weight";
  r.kind = momentum ? "momentum" : "weight";
  r.run = "synthetic", r.step = step, r.file = "step" + std::to_string(step) + ".safetensors";
  r.rows = r.cols = k, r.tensor_shape = {k, k};
  r.dtype = "BF16", r.transform = "none", r.method = "gram", r.device = "cpu";
  muspec::SpectrumSpec spec;
  spec.kind = muspec::SpectrumSpec::Kind::Power;
  spec.a = 0.3 + 0.02 * static_cast<double>(op) + 0.005 * static_cast<double>(layer) + 0.001 * static_cast<double>(step / 100);
  r.sigma = muspec::make_spectrum(spec, k, i);
  double frob2 = 0;
  for (const double s : r.sigma) frob2 += s * s;
  r.summary = muspec::summarize_spectrum(r.sigma, std::sqrt(frob2), 0.0, muspec::default_quantiles());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::stoul(argv[1]) : 10000;
  const int64_t k = argc > 2 ? std::stol(argv[2]) : 1024;
  const std::filesystem::path dir = argc > 3 ? argv[3] : "/tmp/muspec-bench-report";
  std::filesystem::create_directories(dir);
  muspec::SpectraFile f;
  f.attributes = {{"backend", "synthetic (bench_report)"}};
  for (size_t i = 0; i < n; ++i) f.records.push_back(synthetic_record(i, k));
  const std::string store = (dir / "spectra.h5").string(), page = (dir / "report.html").string();
  std::filesystem::remove(store);
  muspec::write_spectra_h5(store, f);
  f.records.clear();
  muspec::analysis::ReportInputs in;
  std::string html;
  const double load = time_ms([&] { in = muspec::analysis::load_report_inputs({store}); });
  const double render = time_ms([&] { html = muspec::analysis::html_report(in); });
  muspec::write_file_atomically(page, html);
  std::cout << nlohmann::json{{"matrices", n}, {"sigma_per_matrix", k}, {"report_bytes", html.size()},
                              {"load_ms", load}, {"render_ms", render}}.dump()
            << "\n";
  return 0;
}
