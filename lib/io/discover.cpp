#include "io/discover.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/json_limits.h"
#include "core/regular_file.h"
#include "io/dcp.h"
#include "io/deepspeed.h"
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
  nlohmann::json j;
  try {
    j = read_json_file(index.string());
  } catch (const InputError&) {
    return shards;
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) return shards;
  for (const auto& [name, shard] : j["weight_map"].items())
    if (shard.is_string()) shards.insert((index.parent_path() / shard.get<std::string>()).lexically_normal().string());
  return shards;
}

/// Why the entry at `p` (not a regular file, not a directory) is not read: its type, or a
/// dangling symbolic link. Empty for a directory, which the walk itself descends into.
std::string special_entry_reason(const std::string& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? "" : non_regular_reason(st.st_mode);
  struct stat link;
  if (::lstat(p.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) return "is a broken symbolic link";
  return std::string("cannot stat: ") + std::strerror(errno);
}

/// A directory entry that is not a regular file: a problem when it carries a tensor file's
/// name (the user probably meant it to be read), else merely listed as ignored.
void note_special_entry(const std::string& p, DiscoveredFiles& r) {
  const std::string why = special_entry_reason(p);
  if (why.empty()) return;
  (is_tensor_file_name(p) ? r.problems : r.ignored).push_back(p + ": " + why);
}

/// A PyTorch Distributed Checkpoint directory: `.metadata` beside `__R_K.distcp` shards. Its
/// `.metadata` is the one file read; Megatron's common.pt beside it belongs to the checkpoint.
struct DcpDirectories {
  std::set<std::string> with_metadata, with_shards;
  std::set<std::string> covered;
};

void note_dcp_file(const std::string& p, DcpDirectories& dcp) {
  const fs::path path(p);
  const std::string name = path.filename().string(), dir = path.parent_path().string();
  if (name == ".metadata") dcp.with_metadata.insert(dir);
  else if (ends_with(name, ".distcp")) dcp.with_shards.insert(dir);
}

/// `.metadata` files that are DCP indexes (a shard beside them), the files they cover, and a
/// problem for each directory of shards without its `.metadata` (the writer saves it last).
void settle_dcp(const DcpDirectories& dcp, std::vector<std::string>& found, std::set<std::string>& covered, DiscoveredFiles& r) {
  for (const auto& dir : dcp.with_shards) {
    if (!dcp.with_metadata.count(dir)) {
      r.problems.push_back(dir + ": PyTorch Distributed Checkpoint shards (*.distcp) without their .metadata file: the "
                                 "checkpoint is incomplete (DCP writes .metadata last) and cannot be read");
      continue;
    }
    found.push_back((fs::path(dir) / ".metadata").string());
    covered.insert((fs::path(dir) / "common.pt").string());  // Megatron torch_dist: iteration and args
  }
}

void walk_directory(const fs::path& dir, DiscoveredFiles& r) {
  std::vector<std::string> found;
  std::set<std::string> covered;
  DcpDirectories dcp;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string p = it->path().lexically_normal().string();
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) {
      if (type_ec || !it->is_directory(type_ec)) note_special_entry(p, r);
      continue;
    }
    if (const std::string why = deepspeed_latest_problem(p); !why.empty()) r.problems.push_back(p + ": " + why);
    note_dcp_file(p, dcp);
    if (!is_tensor_file_name(p) || is_dcp_metadata_name(p)) continue;
    found.push_back(p);
    if (ends_with(p, ".safetensors.index.json")) {
      auto s = shards_of_index(it->path());
      covered.insert(s.begin(), s.end());
    }
  }
  settle_dcp(dcp, found, covered, r);
  group_deepspeed_checkpoints(found);  // a ZeRO tag directory is one checkpoint
  for (const auto& p : found)
    if (!covered.count(p)) r.files.push_back(p);
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
      walk_directory(p, r);
      if (r.files.size() == before) r.problems.push_back(p + ": no tensor files (*.safetensors, *.npy, *.npz, torch.save files, DCP .metadata) found");
    } else if (!fs::is_regular_file(st)) {
      struct stat raw;
      r.problems.push_back(p + ": " + (::stat(p.c_str(), &raw) == 0 ? non_regular_reason(raw.st_mode) : "cannot stat"));
    } else {
      r.files.push_back(fs::path(p).lexically_normal().string());
    }
  }
  std::sort(r.files.begin(), r.files.end());
  r.files.erase(std::unique(r.files.begin(), r.files.end()), r.files.end());
  return r;
}

}  // namespace muspec
