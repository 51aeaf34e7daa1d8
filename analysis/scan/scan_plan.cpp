#include "scan/scan_plan.h"

#include <cstdio>
#include <set>

#include "scan/shard.h"

namespace muspec {

std::string options_text(const ScanOptions& o) {
  std::string q;
  for (double v : o.quantiles) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    q += (q.empty() ? "" : ",") + std::string(buf);
  }
  return "quantiles " + q + ", method " + method_name(o.method) + ", device " + device_name(o.device) + ", transform " +
         (o.transform == InputTransform::Sign ? "sign" : "none") + ", min-dim " + std::to_string(o.min_dim) +
         (o.shard.active() ? ", shard " + o.shard.text() : "");
}

bool worth_journaling(const std::vector<SpectrumRecord>& records, const std::vector<ScanIssue>& skipped) {
  size_t nonfinite = 0;
  for (const auto& r : records) nonfinite += r.nonfinite > 0 ? 1 : 0;
  return skipped.size() == nonfinite;
}

ScanPlan plan_scan(const ScanOptions& o, const std::vector<MatrixIdentity>& matrices, std::vector<std::string>& notices) {
  ScanPlan plan;
  ScanOptions whole = o;
  whole.shard = ShardSpec{};
  Fingerprint f;
  f.add(options_text(whole)).add(static_cast<int64_t>(matrices.size()));
  std::vector<double> costs;
  std::set<std::string> files;
  std::vector<std::string> file_list;
  for (const auto& m : matrices) {
    f.add(m.text);
    costs.push_back(m.cost);
    if (files.insert(m.file).second) file_list.push_back(m.file);
  }
  plan.fingerprint = f.hex();
  const std::vector<int> part = o.shard.active() ? assign_parts(costs, o.shard.count) : std::vector<int>(matrices.size(), 0);
  const int mine = o.shard.active() ? o.shard.index - 1 : 0;
  std::vector<bool> done(matrices.size(), false);
  if (!o.journal.empty()) {
    JournalHeader header{plan.fingerprint, inputs_stamp(file_list), options_text(o), static_cast<int64_t>(matrices.size())};
    plan.journal = std::make_unique<ScanJournal>(o.journal, header);
    if (!plan.journal->notice().empty()) notices.push_back(plan.journal->notice());
    for (auto& e : plan.journal->take_completed())
      if (part[static_cast<size_t>(e.matrix)] == mine) done[static_cast<size_t>(e.matrix)] = true, plan.done.push_back(std::move(e));
  }
  for (size_t i = 0; i < matrices.size(); ++i)
    if (part[i] == mine && !done[i]) plan.todo.push_back(i);
  return plan;
}

}  // namespace muspec
