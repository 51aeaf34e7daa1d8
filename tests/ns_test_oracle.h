// An independent evaluator for the NS tests: the published polynomials applied by a plain loop,
// with no library scalar-map code, on x = σ/‖G‖_F (the §9 tables use no extra normalization).
#pragma once

#include <algorithm>
#include <string>

#include "ns/catalog.h"
#include "ns/schedule.h"

namespace ns_oracle {

/// A built-in schedule with the normalization switched off.
inline muspec::ns::Schedule bare(const std::string& name) {
  muspec::ns::Schedule s = muspec::ns::builtin_schedule(name);
  s.normalization = muspec::ns::Normalization{0.0, 0.0};
  return s;
}

/// p_k(...p_1(x)), repeating the last polynomial past the end of the list.
inline double by_hand(const muspec::ns::Schedule& s, int k, double x) {
  for (int i = 0; i < k; ++i) {
    const muspec::ns::OddPoly& p = s.polys[std::min<size_t>(static_cast<size_t>(i), s.polys.size() - 1)];
    x = p.a * x + p.b * x * x * x + p.c * x * x * x * x * x;
  }
  return x;
}

}  // namespace ns_oracle
