// Calibrates kBf16BandAllowance (analysis/configs/precision_check.h, docs/ns-config.md "Precision"):
// for every matrix of the given checkpoints and a set of synthetic spectra, picks the fewest
// steps whose exact scalar map puts [ℓ, 1] in the schedule's band (ℓ = the matrix's quantile,
// as recommend does), runs the emulated bf16 iteration (bf16 storage, float32 products),
// measures each direction's gain u_iᵀ X v_i, and prints how far the gains of the directions
// at or above ℓ leave the band.
//
//   muspec_bench_ns_precision [--max-elements N] PATHS...
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "core/tensor.h"
#include "io/discover.h"
#include "io/tensor_source.h"
#include "ns/catalog.h"
#include "ns/direction_gains.h"
#include "ns/quality.h"

using namespace muspec;

namespace {

struct Sample {
  std::string name;
  std::vector<double> g;
  int64_t rows, cols;
};

std::vector<Sample> synthetic() {
  std::vector<Sample> out;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> n01;
  for (auto [m, n] : std::vector<std::pair<int, int>>{{64, 64}, {64, 256}, {128, 128}, {96, 384}}) {
    // U diag(s) Vᵀ with s log-spaced over four decades: random orthonormal U, V via Gram-Schmidt.
    const int r = std::min(m, n);
    Eigen::MatrixXd u = Eigen::MatrixXd::NullaryExpr(m, r, [&] { return n01(rng); });
    Eigen::MatrixXd v = Eigen::MatrixXd::NullaryExpr(n, r, [&] { return n01(rng); });
    u = Eigen::HouseholderQR<Eigen::MatrixXd>(u).householderQ() * Eigen::MatrixXd::Identity(m, r);
    v = Eigen::HouseholderQR<Eigen::MatrixXd>(v).householderQ() * Eigen::MatrixXd::Identity(n, r);
    Eigen::VectorXd s(r);
    for (int i = 0; i < r; ++i) s(i) = std::pow(10.0, -4.0 * i / (r - 1));
    const Eigen::MatrixXd g = u * s.asDiagonal() * v.transpose();
    Sample smp{"synthetic " + std::to_string(m) + "x" + std::to_string(n), std::vector<double>(static_cast<size_t>(m * n)), m, n};
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) smp.g[static_cast<size_t>(i * n + j)] = g(i, j);
    out.push_back(std::move(smp));
  }
  return out;
}

void add_files(const std::vector<std::string>& paths, int64_t max_elements, std::vector<Sample>& out) {
  for (const std::string& path : discover_tensor_files(paths).files) {
    const auto src = open_tensor_file(path);
    for (size_t i = 0; i < src->entries().size(); ++i) {
      const TensorEntry& e = src->entries()[i];
      if (e.shape.size() != 2 || !e.dtype || !dtype_is_decodable_float(*e.dtype) || e.shape[0] < 8 || e.shape[1] < 8) continue;
      if (e.shape[0] * e.shape[1] > max_elements) continue;
      const TensorHandle h = src->load(i);
      const MatrixView m = matrix_of(h.view, 0);
      Sample s{path + ":" + e.name, std::vector<double>(static_cast<size_t>(m.rows * m.cols)), m.rows, m.cols};
      if (to_dense_row_major(m, InputTransform::None, s.g.data()).nonfinite == 0) out.push_back(std::move(s));
    }
  }
}

/// How far the bf16 gains of the directions at or above the matrix's quantile-q value leave the
/// exact-arithmetic band, at the fewest steps whose exact image covers [ℓ, 1] (what recommend
/// picks). 0 when every gain is inside; nothing when no step count within 15 covers.
std::optional<double> excursion(const Sample& smp, const ns::Schedule& sch, double q, int* steps, double* lower_out) {
  const auto exact = ns::direction_gains(sch, 1, ns::Precision::F64, smp.g.data(), smp.rows, smp.cols);
  const double lower = exact[static_cast<size_t>(q * static_cast<double>(exact.size() - 1))].s;
  const ns::Band band = sch.target_band();
  *lower_out = lower;
  if (lower <= 0) return std::nullopt;
  const auto k = ns::min_steps(sch, lower, band, 15);
  if (!k) return std::nullopt;
  *steps = *k;
  double worst = 0.0;
  for (const auto& d : ns::direction_gains(sch, *k, ns::Precision::BF16, smp.g.data(), smp.rows, smp.cols))
    if (d.s >= lower) worst = std::max({worst, band.lo - d.gain, d.gain - band.hi});
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t max_elements = 1 << 18;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--max-elements") == 0 && i + 1 < argc) max_elements = std::stoll(argv[++i]);
    else paths.push_back(argv[i]);
  }
  std::vector<Sample> samples = synthetic();
  add_files(paths, max_elements, samples);
  const std::vector<ns::Schedule> schedules = {ns::resolve_schedule("keller"), ns::resolve_schedule("polar-express")};
  std::printf("%zu matrices (%zu synthetic); bf16 emulation (bf16 storage, float32 products)\n", samples.size(), synthetic().size());
  // The largest excursion beyond the band, by the size of the lower bound ℓ (quantiles 1%, 5%, 25%).
  const double edges[] = {0.0, 1e-3, 3e-3, 1e-2, 3e-2, 1.0};
  for (const ns::Schedule& sch : schedules) {
    double worst[5] = {0, 0, 0, 0, 0}, worst_m[5] = {0, 0, 0, 0, 0};
    int count[5] = {0, 0, 0, 0, 0};
    for (const Sample& smp : samples)
      for (const double q : {0.01, 0.05, 0.25}) {
        int k = 0;
        double lower = 0;
        const auto e = excursion(smp, sch, q, &k, &lower);
        if (!e) continue;
        int b = 0;
        while (b < 4 && lower >= edges[b + 1]) ++b;
        ++count[b];
        worst[b] = std::max(worst[b], *e);
        if (smp.name.find("momentum") != std::string::npos) worst_m[b] = std::max(worst_m[b], *e);
      }
    std::printf("%s, band [%.4g, %.4g]: largest excursion of a bf16 gain (directions s >= lower bound) beyond the band\n",
                sch.name.c_str(), sch.target_band().lo, sch.target_band().hi);
    for (int b = 0; b < 5; ++b)
      std::printf("  lower bound in [%g, %g): %3d cases, momentum buffers %.4f, all %.4f\n", edges[b], edges[b + 1], count[b],
                  worst_m[b], worst[b]);
  }
  return 0;
}
