#include "laws/grouping.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_limits.h"

namespace muspec::analysis {

namespace {

constexpr const char* kGroupFileFormat = "muspec.groups";

int parse_count(const std::string& part, const std::string& value) {
  std::istringstream in(value);
  int n = 0;
  if (!(in >> n) || !in.eof() || n < 1 || n > 1000)
    throw UsageError("--group: '" + part + "' needs a count from 1 to 1000");
  return n;
}

struct GroupSpec {
  bool by_op = false;
  int depth_buckets = 0;   ///< 0 = no depth split
  int last_layers = 0;     ///< 0 = no layer-from-end split
};

GroupSpec parse_spec(const std::string& spec) {
  GroupSpec g;
  std::stringstream parts(spec);
  std::string part;
  while (std::getline(parts, part, ',')) {
    const size_t colon = part.find(':');
    const std::string key = part.substr(0, colon);
    if (part == "optype") g.by_op = true;
    else if (key == "depth" && colon != std::string::npos) g.depth_buckets = parse_count(part, part.substr(colon + 1));
    else if (key == "layer-from-end" && colon != std::string::npos) g.last_layers = parse_count(part, part.substr(colon + 1));
    else
      throw UsageError("--group: unknown part '" + part +
                       "' (expected optype, depth:N, layer-from-end:N, or a .json group file)");
  }
  if (g.depth_buckets > 0 && g.last_layers > 0)
    throw UsageError("--group: depth:N and layer-from-end:N cannot be combined");
  if (!g.by_op && g.depth_buckets == 0 && g.last_layers == 0) throw UsageError("--group: empty spec");
  return g;
}

std::string join_name(const std::string& op, const std::string& place) {
  if (op.empty()) return place;
  return place.empty() ? op : op + "/" + place;
}

/// The place parts of a spec (depth buckets or last layers), without op type.
std::vector<GroupSelector> place_groups(const GroupSpec& g) {
  std::vector<GroupSelector> out;
  for (int i = 0; i < g.depth_buckets; ++i) {
    GroupSelector s;
    s.depth_lo = static_cast<double>(i) / g.depth_buckets;
    s.depth_hi = static_cast<double>(i + 1) / g.depth_buckets;
    s.name = depth_label(s.depth_lo, s.depth_hi);
    out.push_back(s);
  }
  for (int k = 0; k < g.last_layers; ++k) {
    GroupSelector s;
    s.layer_from_end = k;
    s.name = "layer-from-end:" + std::to_string(k);
    out.push_back(s);
  }
  if (out.empty()) out.emplace_back();  // one place: everything
  return out;
}

std::string format_depth(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

[[noreturn]] void bad_field(const std::string& path, const std::string& field, const std::string& what) {
  throw InputError(path, "", field + ": " + what);
}

GroupSelector parse_group_entry(const std::string& path, const nlohmann::json& e, size_t i) {
  const std::string at = "groups[" + std::to_string(i) + "]";
  if (!e.is_object()) bad_field(path, at, "expected an object");
  GroupSelector s;
  if (!e.contains("name") || !e["name"].is_string() || e["name"].get<std::string>().empty())
    bad_field(path, at + ".name", "expected a non-empty string");
  s.name = e["name"].get<std::string>();
  if (e.contains("op_type")) {
    if (!e["op_type"].is_string()) bad_field(path, at + ".op_type", "expected a string (\"\" = any)");
    s.op_type = e["op_type"].get<std::string>();
  }
  if (e.contains("depth")) {
    const auto& d = e["depth"];
    if (!d.is_array() || d.size() != 2 || !d[0].is_number() || !d[1].is_number())
      bad_field(path, at + ".depth", "expected [lo, hi]");
    s.depth_lo = d[0].get<double>();
    s.depth_hi = d[1].get<double>();
    if (!(s.depth_lo >= 0 && s.depth_lo < s.depth_hi && s.depth_hi <= 1))
      bad_field(path, at + ".depth", "expected 0 <= lo < hi <= 1");
  }
  if (e.contains("layer_from_end")) {
    const auto& l = e["layer_from_end"];
    if (!l.is_number_integer() || l.get<int64_t>() < -1 || l.get<int64_t>() > std::numeric_limits<int>::max())
      bad_field(path, at + ".layer_from_end", "expected an integer >= -1");
    s.layer_from_end = e["layer_from_end"].get<int>();
  }
  return s;
}

}  // namespace

bool GroupSelector::matches(const std::string& op, int64_t layer, int64_t num_layers) const {
  if (!op_type.empty() && op != op_type) return false;
  if (layer < 0 || num_layers <= 0 || layer >= num_layers) return false;
  if (layer_from_end >= 0 && num_layers - 1 - layer != layer_from_end) return false;
  const double rel = num_layers > 1 ? static_cast<double>(layer) / static_cast<double>(num_layers - 1) : 0.0;
  if (rel < depth_lo) return false;
  return depth_hi >= 1.0 ? rel <= depth_hi : rel < depth_hi;
}

std::vector<std::string> ordered_op_types(const std::vector<std::string>& op_types) {
  static const std::vector<std::string> canonical = {"q", "k", "v", "qkv", "o", "gate", "up", "gate_up", "down"};
  const std::set<std::string> present(op_types.begin(), op_types.end());
  std::vector<std::string> out;
  for (const auto& c : canonical)
    if (present.count(c)) out.push_back(c);
  for (const auto& p : present)
    if (std::find(canonical.begin(), canonical.end(), p) == canonical.end()) out.push_back(p);
  return out;
}

std::string depth_label(double lo, double hi) { return "depth:" + format_depth(lo) + "-" + format_depth(hi); }

std::vector<GroupSelector> make_groups(const std::string& spec, const std::vector<std::string>& op_types) {
  if (spec.size() > 5 && spec.substr(spec.size() - 5) == ".json") return read_group_file(spec);
  const GroupSpec g = parse_spec(spec);
  const std::vector<std::string> ops = g.by_op ? ordered_op_types(op_types) : std::vector<std::string>{""};
  std::vector<GroupSelector> out;
  for (const auto& op : ops)
    for (GroupSelector s : place_groups(g)) {
      s.op_type = op;
      s.name = join_name(op, s.name);
      out.push_back(s);
    }
  return out;
}

std::vector<GroupSelector> read_group_file(const std::string& path) {
  JsonLimits limits;
  limits.syntax_label = "not valid JSON";
  const nlohmann::json doc = read_json_file(path, limits);  // a regular file, nesting limited
  if (!doc.is_object()) throw InputError(path, "", "expected a JSON object");
  // Typed checks before every read: a wrong-typed field names the file and the field.
  if (!doc.contains("format") || !doc["format"].is_string() || doc["format"].get<std::string>() != kGroupFileFormat)
    bad_field(path, "format", std::string("expected the string \"") + kGroupFileFormat + "\"");
  if (!doc.contains("version") || doc["version"] != 1) bad_field(path, "version", "expected 1");
  if (!doc.contains("groups") || !doc["groups"].is_array() || doc["groups"].empty())
    bad_field(path, "groups", "expected a non-empty list");
  std::vector<GroupSelector> out;
  std::set<std::string> names;
  for (size_t i = 0; i < doc["groups"].size(); ++i) {
    out.push_back(parse_group_entry(path, doc["groups"][i], i));
    if (!names.insert(out.back().name).second)
      bad_field(path, "groups[" + std::to_string(i) + "].name", "duplicate name '" + out.back().name + "'");
  }
  return out;
}

std::vector<size_t> groups_of(const std::vector<GroupSelector>& groups, const SpectrumRecord& record) {
  std::vector<size_t> out;
  for (size_t i = 0; i < groups.size(); ++i)
    if (groups[i].matches(record.op_type, record.layer, record.num_layers)) out.push_back(i);
  return out;
}

}  // namespace muspec::analysis
