#include "io/discover.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "io/tensor_source.h"

namespace muspec {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Shard paths named by a sharded index (best effort: a malformed index is reported when it
/// is opened, not here).
std::set<std::string> shards_of_index(const fs::path& index) {
  std::set<std::string> shards;
  std::ifstream f(index);
  const auto j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) return shards;
  for (const auto& [name, shard] : j["weight_map"].items())
    if (shard.is_string()) shards.insert((index.parent_path() / shard.get<std::string>()).lexically_normal().string());
  return shards;
}

void walk_directory(const fs::path& dir, std::vector<std::string>& out) {
  std::vector<std::string> found;
  std::set<std::string> covered;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string p = it->path().lexically_normal().string();
    if (!is_tensor_file_name(p)) continue;
    found.push_back(p);
    if (ends_with(p, ".safetensors.index.json")) {
      auto s = shards_of_index(it->path());
      covered.insert(s.begin(), s.end());
    }
  }
  for (const auto& p : found)
    if (!covered.count(p)) out.push_back(p);
}

}  // namespace

DiscoveredFiles discover_tensor_files(const std::vector<std::string>& paths) {
  DiscoveredFiles r;
  for (const auto& p : paths) {
    std::error_code ec;
    const auto st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      r.problems.push_back(p + ": no such file or directory");
    } else if (fs::is_directory(st)) {
      const size_t before = r.files.size();
      walk_directory(p, r.files);
      if (r.files.size() == before) r.problems.push_back(p + ": no tensor files (*.safetensors, *.npy, *.npz) found");
    } else {
      r.files.push_back(fs::path(p).lexically_normal().string());
    }
  }
  std::sort(r.files.begin(), r.files.end());
  r.files.erase(std::unique(r.files.begin(), r.files.end()), r.files.end());
  return r;
}

}  // namespace muspec
