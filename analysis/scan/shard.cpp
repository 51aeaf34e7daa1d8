#include "scan/shard.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <queue>
#include <tuple>

#include "core/error.h"

namespace muspec {

ShardSpec parse_shard(const std::string& text, const std::string& option) {
  const std::string bad = option + ": expected I/N with 1 <= I <= N (e.g. 2/8), got '" + text + "'";
  const size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size() || text.size() > 13) throw UsageError(bad);
  auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 6 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      throw UsageError(bad);
    return std::stoi(s);
  };
  ShardSpec spec{number(text.substr(0, slash)), number(text.substr(slash + 1))};
  if (spec.index < 1 || spec.count < 1 || spec.index > spec.count || spec.count > 100000) throw UsageError(bad);
  return spec;
}

double matrix_cost(int64_t rows, int64_t cols, int64_t slices) {
  const double m = static_cast<double>(rows), n = static_cast<double>(cols), k = std::min(m, n);
  return static_cast<double>(std::max<int64_t>(1, slices)) * (m * n * k + k * k * k);
}

std::vector<int> assign_parts(const std::vector<double>& costs, int parts) {
  std::vector<size_t> by_cost(costs.size());
  std::iota(by_cost.begin(), by_cost.end(), size_t{0});
  std::stable_sort(by_cost.begin(), by_cost.end(), [&](size_t a, size_t b) { return costs[a] > costs[b]; });
  // A min-heap of (work so far, part): the least-loaded part, the lowest index among equals.
  using Load = std::pair<double, int>;
  std::priority_queue<Load, std::vector<Load>, std::greater<Load>> loads;
  for (int p = 0; p < std::max(1, parts); ++p) loads.push({0.0, p});
  std::vector<int> part(costs.size(), 0);
  for (size_t i : by_cost) {
    Load l = loads.top();
    loads.pop();
    part[i] = l.second;
    l.first += costs[i];
    loads.push(l);
  }
  return part;
}

void Fingerprint::bytes(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) {
    h_ ^= b[i];
    h_ *= 1099511628211ULL;
  }
}

Fingerprint& Fingerprint::add(const std::string& s) {
  add(static_cast<int64_t>(s.size()));  // length first: ("ab","c") and ("a","bc") differ
  bytes(s.data(), s.size());
  return *this;
}

Fingerprint& Fingerprint::add(int64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> (8 * i));
  bytes(b, 8);
  return *this;
}

Fingerprint& Fingerprint::add(double v) {
  int64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return add(bits);
}

std::string Fingerprint::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
  return buf;
}

void order_records(std::vector<SpectrumRecord>& records, std::vector<int64_t>& scan_order) {
  std::vector<size_t> perm(records.size());
  std::iota(perm.begin(), perm.end(), size_t{0});
  std::stable_sort(perm.begin(), perm.end(), [&](size_t a, size_t b) {
    return std::tie(records[a].run, records[a].step, scan_order[a]) < std::tie(records[b].run, records[b].step, scan_order[b]);
  });
  std::vector<SpectrumRecord> r;
  std::vector<int64_t> o;
  r.reserve(records.size());
  o.reserve(records.size());
  for (size_t i : perm) {
    r.push_back(std::move(records[i]));
    o.push_back(scan_order[i]);
  }
  records = std::move(r);
  scan_order = std::move(o);
}

}  // namespace muspec
