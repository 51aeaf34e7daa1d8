// Field-by-field equality of two spectrum records (bit-for-bit for reals), for the store's
// round-trip tests (test_store.cpp, test_store_summary.cpp).
#pragma once

#include <catch2/catch.hpp>

#include <cstring>

#include "spectra/layer_metrics.h"
#include "store/spectra_store.h"

namespace muspec_test {

inline bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

inline void check_same_record(const muspec::SpectrumRecord& a, const muspec::SpectrumRecord& b, bool with_sigma = true) {
  INFO("record " << a.name);
  CHECK(a.name == b.name);
  CHECK(a.tensor == b.tensor);
  CHECK(a.slice == b.slice);
  CHECK(a.file == b.file);
  CHECK(a.rows == b.rows);
  CHECK(a.cols == b.cols);
  CHECK(a.tensor_shape == b.tensor_shape);
  CHECK(a.dtype == b.dtype);
  CHECK(a.transform == b.transform);
  CHECK(a.run == b.run);
  CHECK(a.step == b.step);
  CHECK(a.model_params == b.model_params);
  CHECK(a.params_source == b.params_source);
  CHECK(a.sharded == b.sharded);
  CHECK(a.shards == b.shards);
  CHECK(a.kind == b.kind);
  CHECK(a.parameter == b.parameter);
  CHECK(a.op_type == b.op_type);
  CHECK(a.layer == b.layer);
  CHECK(a.num_layers == b.num_layers);
  CHECK(same_bits(a.rel_depth, b.rel_depth));
  CHECK(a.muon == b.muon);
  CHECK(a.transposed == b.transposed);
  CHECK(a.method == b.method);
  CHECK(a.device == b.device);
  CHECK(same_bits(a.floor, b.floor));
  CHECK(a.nonfinite == b.nonfinite);
  if (with_sigma) {
    REQUIRE(a.sigma.size() == b.sigma.size());
    for (size_t i = 0; i < a.sigma.size(); ++i) CHECK(same_bits(a.sigma[i], b.sigma[i]));
  }
  const auto &s = a.summary, &t = b.summary;
  CHECK(same_bits(s.sigma_max, t.sigma_max));
  CHECK(same_bits(s.sigma_min, t.sigma_min));
  CHECK(same_bits(s.frobenius, t.frobenius));
  CHECK(same_bits(s.nuclear, t.nuclear));
  CHECK(same_bits(s.cond, t.cond));
  CHECK(same_bits(s.stable_rank, t.stable_rank));
  CHECK(same_bits(s.effective_rank, t.effective_rank));
  CHECK(s.below_floor == t.below_floor);
  REQUIRE(s.quantiles.size() == t.quantiles.size());
  for (size_t i = 0; i < s.quantiles.size(); ++i) {
    CHECK(same_bits(s.quantiles[i].q, t.quantiles[i].q));
    CHECK(same_bits(s.quantiles[i].sigma, t.quantiles[i].sigma));
    CHECK(same_bits(s.quantiles[i].rel_max, t.quantiles[i].rel_max));
    CHECK(same_bits(s.quantiles[i].rel_frob, t.quantiles[i].rel_frob));
    CHECK(same_bits(s.quantiles[i].cond, t.quantiles[i].cond));
  }
  for (const auto& m : muspec::layer_metric_fields()) {
    INFO("metric " << m.name);
    if (m.real) CHECK(same_bits(a.layer_metrics.*m.real, b.layer_metrics.*m.real));
    else CHECK(a.layer_metrics.*m.count == b.layer_metrics.*m.count);
  }
  CHECK(a.layer_metrics.note == b.layer_metrics.note);
}

}  // namespace muspec_test
