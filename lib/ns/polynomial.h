// Odd polynomials p(x) = a·x + b·x³ + c·x⁵ (one Newton–Schulz step) and exact interval images.
//
// One NS step X ← aX + b(XXᵀ)X + c(XXᵀ)²X maps every singular value s to p(s)
// (reference/newton-schulz.md §2.1); a schedule applies a composition of such polynomials.
#pragma once

#include <string>
#include <vector>

namespace muspec::ns {

/// A closed interval [lo, hi] of the real line (lo <= hi).
struct Interval {
  double lo = 0.0, hi = 0.0;
  bool contains(const Interval& other) const { return lo <= other.lo && other.hi <= hi; }
  bool contains(double x) const { return lo <= x && x <= hi; }
};

/// p(x) = a·x + b·x³ + c·x⁵. A cubic step has c == 0 (and costs two matrix products, not three).
struct OddPoly {
  double a = 0.0, b = 0.0, c = 0.0;

  /// 3 when c == 0, else 5.
  int degree() const { return c == 0.0 ? 3 : 5; }
  double operator()(double x) const {
    const double x2 = x * x;
    return x * (a + x2 * (b + x2 * c));
  }
  /// p'(x) = a + 3b·x² + 5c·x⁴.
  double derivative(double x) const {
    const double x2 = x * x;
    return a + x2 * (3.0 * b + x2 * 5.0 * c);
  }
  /// The polynomial x ↦ p(x / f): (a/f, b/f³, c/f⁵). This is the safety factor of
  /// reference §5.6 (f = 1 + ε).
  OddPoly input_scaled(double f) const;
  /// The polynomial x ↦ f·p(x) (used by re-centring, §5.5).
  OddPoly output_scaled(double f) const;
  /// Positive real critical points (roots of p'), ascending; at most two.
  std::vector<double> positive_critical_points() const;
  /// Exact image p([lo, hi]) = [min, max] over the end points and the critical points inside.
  Interval image(const Interval& x) const;

  bool operator==(const OddPoly& o) const { return a == o.a && b == o.b && c == o.c; }
};

/// Composition p_k ∘ … ∘ p_1 evaluated at x (polys applied in order, first element first).
double compose(const std::vector<OddPoly>& polys, double x);

/// Exact image of an interval under the composition: because each image is an interval,
/// propagating [lo, hi] step by step through OddPoly::image is exact (up to rounding).
Interval compose_image(const std::vector<OddPoly>& polys, const Interval& x);

/// "a, b, c" with 17 significant digits (round-trip exact).
std::string to_string(const OddPoly& p);

}  // namespace muspec::ns
