// muspec merge PART.h5... -o spectra.h5 [--summary table.csv] [--json summary.json]
// Joins the part stores of `muspec scan --shard I/N` into the store one scan would have written
// (docs/cluster.md): the same records in the same order, the values bit for bit.
#include <CLI/CLI.hpp>

#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "report/scan_report.h"
#include "scan/shard.h"
#include "store/spectra_store.h"

namespace muspec::cli {

namespace {

struct MergeArgs {
  std::vector<std::string> parts;
  std::string h5_out, csv_out, json_out, command_line;
  bool quiet = false;
};

struct Part {
  std::string path;
  ShardSpec shard;
  SpectraFile file;
};

std::string attribute(const Part& p, const char* name) {
  const auto it = p.file.attributes.find(name);
  if (it == p.file.attributes.end())
    throw InputError(p.path, "", std::string("not a part of a sharded scan (no '") + name +
                                     "' attribute): only stores written by `muspec scan --shard I/N` can be merged");
  return it->second;
}

Part read_part(const std::string& path) {
  Part p{path, {}, read_spectra_h5(path)};
  try {
    p.shard = parse_shard(attribute(p, kAttrShard), "attribute 'shard'");
  } catch (const UsageError& e) {
    throw InputError(path, "", e.what());
  }
  if (p.file.scan_order.size() != p.file.records.size())
    throw InputError(path, "/scan_order", "missing: a part store has the scan order of its records");
  return p;
}

/// The parts are of one scan, each once, none missing; else an error naming the file.
void check_parts(const std::vector<Part>& parts) {
  const Part& first = parts.front();
  const std::string fingerprint = attribute(first, kAttrScanFingerprint), matrices = attribute(first, kAttrScanMatrices);
  std::map<int, const Part*> by_index;
  for (const Part& p : parts) {
    if (attribute(p, kAttrScanFingerprint) != fingerprint || attribute(p, kAttrScanMatrices) != matrices)
      throw InputError(p.path, "", "is part of another scan than " + first.path + " (other inputs or options: scan fingerprint " +
                                       attribute(p, kAttrScanFingerprint) + " over " + attribute(p, kAttrScanMatrices) +
                                       " matrices, not " + fingerprint + " over " + matrices + ")");
    for (const char* key : {"quantiles", "muspec_version"})
      if (p.file.attributes.count(key) && first.file.attributes.count(key) && p.file.attributes.at(key) != first.file.attributes.at(key))
        throw InputError(p.path, "", std::string("its '") + key + "' attribute differs from " + first.path + "'s");
    if (p.shard.count != first.shard.count)
      throw InputError(p.path, "", "is part " + p.shard.text() + ", but " + first.path + " is part " + first.shard.text());
    if (by_index.count(p.shard.index))
      throw InputError(p.path, "", "is part " + p.shard.text() + " again (so is " + by_index[p.shard.index]->path + ")");
    by_index[p.shard.index] = &p;
  }
  std::string missing;
  for (int i = 1; i <= first.shard.count; ++i)
    if (!by_index.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i) + "/" + std::to_string(first.shard.count);
  if (!missing.empty()) throw UsageError("the parts of the scan of " + first.path + " are incomplete: missing part " + missing);
  std::map<int64_t, const Part*> holder;  // every matrix in one part only
  for (const Part& p : parts)
    for (int64_t m : std::set<int64_t>(p.file.scan_order.begin(), p.file.scan_order.end()))
      if (!holder.emplace(m, &p).second)
        throw InputError(p.path, "", "holds matrix " + std::to_string(m) + " of the scan, and so does " + holder[m]->path);
}

std::string now_iso8601() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

int run_merge(MergeArgs& a) {
  std::vector<NamedPath> inputs;
  for (const auto& p : a.parts) inputs.push_back({"part", p});
  check_paths(inputs, {{"-o", a.h5_out}, {"--summary", a.csv_out}, {"--json", a.json_out}});
  std::vector<Part> parts;
  for (const auto& path : a.parts) parts.push_back(read_part(path));
  check_parts(parts);

  SpectraFile merged;
  std::vector<int64_t> order;
  std::set<std::string> backends;
  for (Part& p : parts) {
    for (auto& r : p.file.records) merged.records.push_back(std::move(r));
    order.insert(order.end(), p.file.scan_order.begin(), p.file.scan_order.end());
    if (p.file.attributes.count("backend")) backends.insert(p.file.attributes.at("backend"));
  }
  order_records(merged.records, order);
  merged.attributes = parts.front().file.attributes;
  for (const char* key : {kAttrShard, kAttrScanFingerprint, kAttrScanMatrices}) merged.attributes.erase(key);
  merged.attributes["created"] = now_iso8601();
  merged.attributes["command"] = a.command_line;
  std::string backend;
  for (const auto& b : backends) backend += (backend.empty() ? "" : "; ") + b;
  if (!backends.empty()) merged.attributes["backend"] = backend;

  std::vector<double> quantiles = default_quantiles();
  if (merged.attributes.count("quantiles")) quantiles = nlohmann::json::parse(merged.attributes["quantiles"]).get<std::vector<double>>();
  OutputTransaction outputs;
  write_spectra_h5(a.h5_out, merged);
  if (!a.csv_out.empty()) write_file_atomically(a.csv_out, summary_csv(merged.records, quantiles));
  if (!a.json_out.empty()) write_file_atomically(a.json_out, summary_json(merged.records, quantiles).dump(2) + "\n");
  outputs.commit();
  if (!a.quiet)
    std::cout << "merged " << parts.size() << " parts: " << merged.records.size() << " records in " << a.h5_out << "\n";
  return kExitOk;
}

}  // namespace

Action setup_merge(CLI::App& sub) {
  auto a = std::make_shared<MergeArgs>();
  sub.add_option("parts", a->parts, "the part stores of one sharded scan (muspec scan --shard I/N -o part-I.h5)")->required();
  sub.add_option("-o,--output", a->h5_out, "write the joined spectra to this HDF5 file")->required();
  sub.add_option("--summary", a->csv_out, "write the per-matrix summary as CSV (as muspec scan --summary)");
  sub.add_option("--json", a->json_out, "write the per-matrix summary as JSON (as muspec scan --json)");
  sub.add_flag("-q,--quiet", a->quiet, "print nothing on success");
  return [a, &sub] {
    a->command_line = command_line_of(sub, "merge");
    return run_merge(*a);
  };
}

}  // namespace muspec::cli
