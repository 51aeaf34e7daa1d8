#include "configs/precision_check.h"

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "core/tensor.h"
#include "io/tensor_source.h"
#include "ns/direction_gains.h"

namespace muspec {

ns::Band band_at_precision(const ns::Band& exact, ns::Precision precision) {
  const double d = precision == ns::Precision::BF16 ? kBf16BandAllowance : precision == ns::Precision::F32 ? 1e-4 : 0.0;
  return ns::Band{exact.lo - d, exact.hi + d};
}

double precision_floor(ns::Precision precision) { return precision == ns::Precision::BF16 ? kBf16Floor : 0.0; }

std::optional<std::vector<double>> load_matrix(const MatrixSource& source, int64_t* rows, int64_t* cols, std::string* why) {
  try {
    const std::unique_ptr<TensorSource> src = open_tensor_file(source.file);
    const auto& entries = src->entries();
    const auto it = std::find_if(entries.begin(), entries.end(), [&](const TensorEntry& e) { return e.name == source.tensor; });
    if (it == entries.end()) {
      *why = source.file + ": tensor '" + source.tensor + "' is no longer there";
      return std::nullopt;
    }
    const TensorHandle h = src->load(static_cast<size_t>(it - entries.begin()));
    if (source.slice >= matrix_count(h.view)) {
      *why = source.file + ": '" + source.tensor + "' has no slice " + std::to_string(source.slice);
      return std::nullopt;
    }
    const MatrixView m = matrix_of(h.view, std::max<int64_t>(source.slice, 0));
    std::vector<double> g(static_cast<size_t>(m.rows * m.cols));
    if (to_dense_row_major(m, InputTransform::None, g.data()).nonfinite > 0) {
      *why = source.file + ": '" + source.tensor + "' holds NaN/Inf";
      return std::nullopt;
    }
    *rows = m.rows, *cols = m.cols;
    return g;
  } catch (const Error& e) {
    *why = e.what();
    return std::nullopt;
  }
}

void GainRange::add(const GainRange& o) {
  min_gain = std::min(min_gain, o.min_gain);
  max_gain = std::max(max_gain, o.max_gain);
  directions += o.directions;
  realizations = std::max(realizations, o.realizations);
}

std::vector<ns::Bf16Rounding> realizations_for(ns::Precision precision, double lower) {
  if (precision != ns::Precision::BF16) return {ns::Bf16Rounding{}};
  return ns::bf16_realizations(lower < kBf16Floor ? kBf16JitteredUnderFloor : 0);
}

GainRange gain_range(const ns::Schedule& schedule, int steps, ns::Precision precision, const std::vector<double>& g,
                     int64_t rows, int64_t cols, double lower) {
  GainRange r;
  const std::vector<ns::Bf16Rounding> runs = realizations_for(precision, lower);
  r.realizations = static_cast<int>(runs.size());
  for (const ns::DirectionGainRange& d : ns::direction_gain_ranges(schedule, steps, precision, g.data(), rows, cols, runs)) {
    if (d.s < lower) continue;
    r.min_gain = std::min(r.min_gain, d.min_gain);
    r.max_gain = std::max(r.max_gain, d.max_gain);
    ++r.directions;
  }
  return r;
}

}  // namespace muspec
