#include "laws/burn_in.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace muspec::analysis {

namespace {

constexpr double kMadToSd = 1.4826;

/// Step-to-step scatter of the tail: robust sd of successive differences / sqrt(2).
double tail_noise(const std::vector<double>& y) {
  const size_t start = y.size() / 2;
  std::vector<double> diffs;
  for (size_t i = start + 1; i < y.size(); ++i) diffs.push_back(y[i] - y[i - 1]);
  if (diffs.size() < 2) return 0.0;
  return robust_scale(diffs) / std::sqrt(2.0);
}

bool within_band(const std::vector<double>& y, size_t from, double band) {
  const double med = median_of(std::vector<double>(y.begin() + static_cast<std::ptrdiff_t>(from), y.end()));
  return std::all_of(y.begin() + static_cast<std::ptrdiff_t>(from), y.end(),
                     [&](double v) { return std::fabs(v - med) <= band; });
}

/// Index of the first settled point, or y.size() when the series never settles.
size_t auto_burn_in_end(const std::vector<int64_t>& steps, const std::vector<double>& y, const BurnInRule& rule,
                        double* band) {
  *band = std::max(rule.tolerance, rule.noise_multiplier * tail_noise(y));
  const size_t n = y.size();
  // Spans in double: an int64 difference of hostile steps could overflow.
  const double last = static_cast<double>(steps.back()), first = static_cast<double>(steps.front());
  const double latest_start = last - rule.min_settled_span * (last - first);
  for (size_t k = 0; k + static_cast<size_t>(rule.min_settled) <= n && static_cast<double>(steps[k]) <= latest_start; ++k)
    if (within_band(y, k, *band)) return k;
  return n;
}

size_t fixed_burn_in_end(const std::vector<int64_t>& steps, const BurnInRule& rule) {
  const double first = rule.mode == BurnInRule::Mode::Step ? static_cast<double>(rule.step)
                                                           : rule.fraction * static_cast<double>(steps.back());
  size_t k = 0;
  while (k < steps.size() && static_cast<double>(steps[k]) < first) ++k;
  return k;
}

}  // namespace

double median_of(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double upper = v[mid];
  if (v.size() % 2 == 1) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (lower + upper);
}

double robust_scale(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  const double med = median_of(v);
  std::vector<double> dev;
  dev.reserve(v.size());
  for (double x : v) dev.push_back(std::fabs(x - med));
  return kMadToSd * median_of(dev);
}

BurnInRule parse_burn_in(const std::string& spec) {
  BurnInRule rule;
  if (spec == "auto") return rule;
  const std::string usage = "--burn-in: expected auto, a step (an integer in [0, 9223372036854775807]) or a fraction "
                            "in [0, 1), got '" + spec + "'";
  const char* begin = spec.data();
  const char* end = begin + spec.size();
  if (spec.find_first_of(".eE") == std::string::npos) {  // a step: an integer, parsed exactly
    int64_t step = 0;
    const auto [ptr, ec] = std::from_chars(begin, end, step);
    if (ec == std::errc::result_out_of_range)
      throw UsageError("--burn-in: step '" + spec + "' is out of range (at most 9223372036854775807)");
    if (spec.empty() || ec != std::errc() || ptr != end || step < 0) throw UsageError(usage);
    rule.mode = BurnInRule::Mode::Step;
    rule.step = step;
    return rule;
  }
  std::istringstream in(spec);
  double value = 0;
  if (!(in >> value) || !in.eof() || !std::isfinite(value) || value < 0) throw UsageError(usage);
  if (value >= 1.0) throw UsageError("--burn-in: a fraction must lie in [0, 1), got '" + spec + "'");
  rule.mode = BurnInRule::Mode::Fraction;
  rule.fraction = value;
  return rule;
}

std::string burn_in_spec(const BurnInRule& rule) {
  if (rule.mode == BurnInRule::Mode::Step) return std::to_string(rule.step);
  if (rule.mode == BurnInRule::Mode::Auto) return "auto";
  std::ostringstream s;
  s << rule.fraction;
  std::string text = s.str();
  if (text.find('.') == std::string::npos) text += ".0";
  return text;
}

SettledValue settle_series(const std::vector<int64_t>& steps, const std::vector<double>& values,
                           const BurnInRule& rule) {
  if (steps.size() != values.size()) throw UsageError("settle_series: steps and values differ in length");
  for (size_t i = 1; i < steps.size(); ++i)
    if (steps[i] <= steps[i - 1]) throw UsageError("settle_series: steps must be ascending and distinct");
  SettledValue out;
  if (steps.empty()) {
    out.reason = "no usable points";
    return out;
  }
  std::vector<double> y;
  for (double v : values) y.push_back(std::log(v));
  size_t first = 0;
  if (rule.mode != BurnInRule::Mode::Auto) {
    first = fixed_burn_in_end(steps, rule);
  } else if (y.size() < static_cast<size_t>(rule.min_settled)) {
    out.checked = false;  // too short to tell: every point counts as settled
  } else {
    first = auto_burn_in_end(steps, y, rule, &out.band);
  }
  if (first >= y.size()) {
    out.reason = rule.mode == BurnInRule::Mode::Auto ? "never within the band (" + std::to_string(out.band) + ")"
                                                     : "no step at or after the burn-in";
    return out;
  }
  out.settled = true;
  out.burn_in_end_step = steps[first];
  out.settled_log_values.assign(y.begin() + static_cast<std::ptrdiff_t>(first), y.end());
  out.log_median = median_of(out.settled_log_values);
  out.log_scale = robust_scale(out.settled_log_values);
  return out;
}

}  // namespace muspec::analysis
