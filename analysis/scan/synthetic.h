// Synthetic matrices with exactly known singular values: X = U diag(s) V^T with Haar-random
// U (m x k) and V (n x k) having orthonormal columns, k = min(m, n).
//
// The generator is deterministic for a seed on every platform (its own RNG, not <random>'s
// distributions, whose output differs between standard libraries).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace muspec {

/// A spectrum family, parsed from the CLI spelling:
///   power:ALPHA        s_i = i^-ALPHA, i = 1..k (sigma_max = 1)
///   mp:RATIO           quantiles of the Marchenko–Pastur law with aspect ratio RATIO in (0, 1],
///                      scaled so that the upper edge is 1 + sqrt(RATIO)
///   loguniform:LO,HI   k values drawn log-uniformly in [LO, HI] (seeded)
///   logspace:LO,HI     k values evenly spaced in log between LO and HI (deterministic)
///   file:PATH          k values from a text file (whitespace-separated)
struct SpectrumSpec {
  enum class Kind { Power, MarchenkoPastur, LogUniform, LogSpace, File } kind = Kind::Power;
  double a = 1.0, b = 1.0;
  std::string path;
};

SpectrumSpec parse_spectrum_spec(const std::string& text);  ///< throws UsageError

/// The k singular values of `spec`, ascending. `seed` matters only for loguniform.
std::vector<double> make_spectrum(const SpectrumSpec& spec, int64_t k, uint64_t seed);

/// A deterministic 64-bit generator (splitmix64 seeding + xoshiro256**) with uniform and
/// standard-normal draws (Box–Muller).
class SynthRng {
 public:
  explicit SynthRng(uint64_t seed);
  uint64_t next();
  double uniform();  ///< in (0, 1)
  double normal();
 private:
  uint64_t s_[4];
  bool have_spare_ = false;
  double spare_ = 0.0;
};

/// m x n row-major float64 matrix with singular values `sigma` (k = min(m, n) values, any
/// order). Haar-random factors via Householder QR of Gaussian matrices with the sign fix
/// that makes the distribution exactly Haar (Mezzadri 2007).
std::vector<double> make_matrix_with_spectrum(int64_t m, int64_t n, const std::vector<double>& sigma,
                                              SynthRng& rng);

/// A matrix rounded to a storage dtype, with a rigorous bound on how far each singular value
/// moved: by Weyl's inequality |sigma_i(X + E) - sigma_i(X)| <= ||E||_2 <= ||E||_F.
struct RoundedMatrix {
  std::string bytes;           ///< little-endian, row-major elements of `dtype`
  double perturbation_bound;   ///< ||E||_F of the rounding error, computed exactly in float64
};

/// Rounds to F64, F32, F16 or BF16 (round to nearest even). Throws UsageError for other types.
RoundedMatrix round_to_dtype(const std::vector<double>& x, DType dtype);

}  // namespace muspec
