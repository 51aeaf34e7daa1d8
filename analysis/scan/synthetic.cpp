#include "scan/synthetic.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace muspec {

namespace {

double parse_number(const std::string& s, const std::string& spec) {
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw UsageError("--spectrum " + spec + ": '" + s + "' is not a number");
}

std::pair<double, double> parse_pair(const std::string& s, const std::string& spec) {
  const auto comma = s.find(',');
  if (comma == std::string::npos) throw UsageError("--spectrum " + spec + ": expected LO,HI");
  return {parse_number(s.substr(0, comma), spec), parse_number(s.substr(comma + 1), spec)};
}

/// CDF of the Marchenko–Pastur law with ratio r in (0, 1] and unit variance, for eigenvalues x
/// of (1/n) W W^T, by numerical integration of the density on [lo, x] (Simpson, fine grid).
double mp_density(double x, double r) {
  const double lo = (1 - std::sqrt(r)) * (1 - std::sqrt(r)), hi = (1 + std::sqrt(r)) * (1 + std::sqrt(r));
  if (x <= lo || x >= hi) return 0.0;
  return std::sqrt((hi - x) * (x - lo)) / (2 * M_PI * r * x);
}

std::vector<double> mp_quantiles(double r, int64_t k) {
  // Tabulate the CDF on a grid in t, x = lo + (hi - lo) * (1 - cos(pi t)) / 2, which clusters
  // points at the square-root edges; invert by linear interpolation.
  const double lo = (1 - std::sqrt(r)) * (1 - std::sqrt(r)), hi = (1 + std::sqrt(r)) * (1 + std::sqrt(r));
  const int grid = 200000;
  std::vector<double> xs(grid + 1), cdf(grid + 1, 0.0);
  for (int i = 0; i <= grid; ++i) xs[i] = lo + (hi - lo) * (1 - std::cos(M_PI * i / grid)) / 2;
  for (int i = 1; i <= grid; ++i) {
    const double mid = 0.5 * (xs[i] + xs[i - 1]);
    const double w = xs[i] - xs[i - 1];
    cdf[i] = cdf[i - 1] + w * (mp_density(xs[i - 1], r) + 4 * mp_density(mid, r) + mp_density(xs[i], r)) / 6;
  }
  for (double& c : cdf) c /= cdf.back();
  std::vector<double> out(static_cast<size_t>(k));
  size_t j = 1;
  for (int64_t i = 0; i < k; ++i) {
    const double p = (static_cast<double>(i) + 0.5) / static_cast<double>(k);
    while (j < cdf.size() - 1 && cdf[j] < p) ++j;
    const double t = (p - cdf[j - 1]) / std::max(cdf[j] - cdf[j - 1], 1e-300);
    const double eig = xs[j - 1] + t * (xs[j] - xs[j - 1]);
    out[static_cast<size_t>(i)] = std::sqrt(eig);  // singular value of W / sqrt(n)
  }
  return out;
}

}  // namespace

SpectrumSpec parse_spectrum_spec(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos)
    throw UsageError("--spectrum '" + text + "': expected power:ALPHA, mp:RATIO, loguniform:LO,HI, logspace:LO,HI or file:PATH");
  const std::string kind = text.substr(0, colon), arg = text.substr(colon + 1);
  SpectrumSpec s;
  if (kind == "power") {
    s.kind = SpectrumSpec::Kind::Power;
    s.a = parse_number(arg, text);
    if (s.a < 0) throw UsageError("--spectrum " + text + ": ALPHA must be >= 0");
  } else if (kind == "mp") {
    s.kind = SpectrumSpec::Kind::MarchenkoPastur;
    s.a = parse_number(arg, text);
    if (!(s.a > 0 && s.a <= 1)) throw UsageError("--spectrum " + text + ": RATIO must be in (0, 1]");
  } else if (kind == "loguniform" || kind == "logspace") {
    s.kind = kind == "loguniform" ? SpectrumSpec::Kind::LogUniform : SpectrumSpec::Kind::LogSpace;
    std::tie(s.a, s.b) = parse_pair(arg, text);
    if (!(s.a > 0 && s.b >= s.a)) throw UsageError("--spectrum " + text + ": need 0 < LO <= HI");
  } else if (kind == "file") {
    s.kind = SpectrumSpec::Kind::File;
    s.path = arg;
  } else {
    throw UsageError("--spectrum '" + text + "': unknown family '" + kind + "'");
  }
  return s;
}

std::vector<double> make_spectrum(const SpectrumSpec& spec, int64_t k, uint64_t seed) {
  std::vector<double> s;
  switch (spec.kind) {
    case SpectrumSpec::Kind::Power:
      for (int64_t i = 1; i <= k; ++i) s.push_back(std::pow(static_cast<double>(i), -spec.a));
      break;
    case SpectrumSpec::Kind::MarchenkoPastur: s = mp_quantiles(spec.a, k); break;
    case SpectrumSpec::Kind::LogUniform: {
      SynthRng rng(seed ^ 0x5eedf00dULL);
      for (int64_t i = 0; i < k; ++i)
        s.push_back(std::exp(std::log(spec.a) + rng.uniform() * (std::log(spec.b) - std::log(spec.a))));
      break;
    }
    case SpectrumSpec::Kind::LogSpace:
      for (int64_t i = 0; i < k; ++i) {
        const double t = k == 1 ? 1.0 : static_cast<double>(i) / static_cast<double>(k - 1);
        s.push_back(std::exp(std::log(spec.a) + t * (std::log(spec.b) - std::log(spec.a))));
      }
      break;
    case SpectrumSpec::Kind::File: {
      std::ifstream f(spec.path);
      if (!f) throw UsageError("--spectrum file:" + spec.path + ": cannot open the file");
      std::string tok;
      while (f >> tok) {
        const double v = parse_number(tok, "file:" + spec.path);
        if (v < 0) throw UsageError("--spectrum file:" + spec.path + ": negative singular value " + tok);
        s.push_back(v);
      }
      if (static_cast<int64_t>(s.size()) != k)
        throw UsageError("--spectrum file:" + spec.path + ": holds " + std::to_string(s.size()) +
                         " values but the shape needs min(M, N) = " + std::to_string(k));
      break;
    }
  }
  std::sort(s.begin(), s.end());
  return s;
}

SynthRng::SynthRng(uint64_t seed) {
  for (auto& w : s_) {  // splitmix64
    seed += 0x9e3779b97f4a7c15ULL;
    uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    w = z ^ (z >> 31);
  }
}

uint64_t SynthRng::next() {  // xoshiro256**
  const auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double SynthRng::uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }

double SynthRng::normal() {
  if (have_spare_) {
    have_spare_ = false;
    return spare_;
  }
  const double u = uniform(), v = uniform();
  const double r = std::sqrt(-2.0 * std::log(u));
  spare_ = r * std::sin(2 * M_PI * v);
  have_spare_ = true;
  return r * std::cos(2 * M_PI * v);
}

namespace {
/// rows x k matrix with Haar-distributed orthonormal columns.
Eigen::MatrixXd haar_columns(int64_t rows, int64_t k, SynthRng& rng) {
  Eigen::MatrixXd g(rows, k);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t i = 0; i < rows; ++i) g(i, j) = rng.normal();
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(rows, k);
  const auto& r = qr.matrixQR();
  for (int64_t j = 0; j < k; ++j)
    if (r(j, j) < 0) q.col(j) *= -1.0;  // makes Q exactly Haar (unique QR with positive diag R)
  return q;
}
}  // namespace

std::vector<double> make_matrix_with_spectrum(int64_t m, int64_t n, const std::vector<double>& sigma,
                                              SynthRng& rng) {
  const int64_t k = std::min(m, n);
  if (static_cast<int64_t>(sigma.size()) != k)
    throw UsageError("need " + std::to_string(k) + " singular values, got " + std::to_string(sigma.size()));
  const Eigen::MatrixXd u = haar_columns(m, k, rng);
  const Eigen::MatrixXd v = haar_columns(n, k, rng);
  Eigen::VectorXd s(k);
  for (int64_t i = 0; i < k; ++i) s(i) = sigma[static_cast<size_t>(i)];
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  RowMajor x = u * s.asDiagonal() * v.transpose();
  return std::vector<double>(x.data(), x.data() + x.size());
}

RoundedMatrix round_to_dtype(const std::vector<double>& x, DType dtype) {
  RoundedMatrix out;
  double err2 = 0.0;
  auto put = [&out](const void* p, size_t n) { out.bytes.append(static_cast<const char*>(p), n); };
  for (double v : x) {
    double stored = v;
    switch (dtype) {
      case DType::F64: put(&v, 8); break;
      case DType::F32: { const float f = static_cast<float>(v); put(&f, 4); stored = f; break; }
      case DType::F16: { const uint16_t h = float_to_f16(static_cast<float>(v)); put(&h, 2); stored = f16_to_double(h); break; }
      case DType::BF16: { const uint16_t h = float_to_bf16(static_cast<float>(v)); put(&h, 2); stored = bf16_to_double(h); break; }
      default: throw UsageError("synthetic matrices can be stored as f64, f32, f16 or bf16, not " + std::string(dtype_name(dtype)));
    }
    err2 += (stored - v) * (stored - v);
  }
  out.perturbation_bound = std::sqrt(err2);
  return out;
}

}  // namespace muspec
