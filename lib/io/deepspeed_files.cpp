// Naming and discovery of DeepSpeed ZeRO checkpoint files.
#include "io/deepspeed_files.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "io/deepspeed.h"

namespace muspec {

namespace fs = std::filesystem;

namespace {

// [bf16_|fp16_]zero_pp_rank_<dp>_mp_rank_<mp>_optim_states.pt
const std::regex& optim_name() {
  static const std::regex re(R"(^(bf16_|fp16_)?zero_pp_rank_(\d{1,5})_mp_rank_(\d{1,4})_optim_states\.pt$)");
  return re;
}

// mp_rank_<mp>_model_states.pt (ZeRO-1/2) or zero_pp_rank_<dp>_mp_rank_<mp>_model_states.pt (ZeRO-3)
const std::regex& model_name() {
  static const std::regex re(R"(^(zero_pp_rank_(\d{1,5})_)?mp_rank_(\d{1,4})_model_states\.pt$)");
  return re;
}

bool is_rank0_model_name(const std::string& base) {
  return base == "mp_rank_00_model_states.pt" || base == "zero_pp_rank_0_mp_rank_00_model_states.pt";
}

bool is_zero_file_name(const std::string& base) {
  return std::regex_match(base, optim_name()) || std::regex_match(base, model_name());
}

bool has_optim_file(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (std::regex_match(it->path().filename().string(), optim_name())) return true;
  return false;
}

/// The first line of a small `latest` file, or "" when it is not a plausible tag.
std::string read_tag(const std::string& latest) {
  std::ifstream f(latest, std::ios::binary);
  std::string tag(256, '\0');
  f.read(&tag[0], static_cast<std::streamsize>(tag.size()));
  tag.resize(static_cast<size_t>(f.gcount()));
  while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.back()))) tag.pop_back();
  const bool plausible = !tag.empty() && tag.size() < 256 && tag.find_first_of("/\n\r\0", 0, 4) == std::string::npos &&
                         tag != "." && tag != "..";
  return plausible ? tag : "";
}

std::string rank0_model_file(const fs::path& dir) {
  for (const char* name : {"mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_model_states.pt"})
    if (fs::exists(dir / name)) return (dir / name).string();
  return "";
}

}  // namespace

namespace deepspeed {

std::string optim_file_name(const std::string& prefix, size_t rank) {
  return prefix + "zero_pp_rank_" + std::to_string(rank) + "_mp_rank_00_optim_states.pt";
}

std::string tag_dir_of(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return fs::path(path).parent_path().string();
  const fs::path latest = fs::path(path) / "latest";
  if (!fs::is_regular_file(latest, ec) || !rank0_model_file(path).empty()) return path;
  const std::string tag = read_tag(latest.string());
  if (tag.empty()) throw InputError(latest.string(), "", "does not name a checkpoint tag");
  const fs::path dir = fs::path(path) / tag;
  if (!fs::is_directory(dir, ec)) throw InputError(latest.string(), "", "names tag '" + tag + "' but there is no directory " + dir.string());
  return dir.string();
}

TagFiles list_tag_dir(const std::string& dir) {
  TagFiles t;
  t.dir = dir;
  std::map<size_t, std::string> by_rank;
  std::set<std::string> prefixes;
  std::error_code ec;
  std::smatch m;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string base = it->path().filename().string();
    const bool optim = std::regex_match(base, m, optim_name());
    if (!optim && !std::regex_match(base, m, model_name())) continue;
    if (std::stoi(m[3].str()) != 0)
      throw InputError(it->path().string(), "", "a tensor-parallel DeepSpeed checkpoint (model-parallel rank " + m[3].str() +
                                                    "): each mp rank holds a slice of every matrix, which muspec does not reassemble");
    if (!optim) continue;
    prefixes.insert(m[1].str());
    by_rank[std::stoul(m[2].str())] = it->path().string();
  }
  if (ec) throw InputError(dir, "", "cannot list the directory: " + ec.message());
  t.model_states = rank0_model_file(dir);
  if (t.model_states.empty())
    throw InputError(dir, "", "no mp_rank_00_model_states.pt or zero_pp_rank_0_mp_rank_00_model_states.pt: not a DeepSpeed ZeRO checkpoint");
  if (by_rank.empty()) throw InputError(dir, "", "no zero_pp_rank_*_optim_states.pt files: not a ZeRO checkpoint");
  if (prefixes.size() > 1)
    throw InputError(dir, "", "optimizer-state files with different prefixes ('bf16_' and not): two runs saved into one tag?");
  t.optim_prefix = *prefixes.begin();
  t.optim.assign(by_rank.rbegin()->first + 1, "");
  for (const auto& [rank, file] : by_rank) t.optim[rank] = file;
  return t;
}

}  // namespace deepspeed

bool is_deepspeed_checkpoint_file(const std::string& path) {
  const fs::path p(path);
  return is_rank0_model_name(p.filename().string()) && has_optim_file(p.parent_path().empty() ? "." : p.parent_path());
}

void group_deepspeed_checkpoints(std::vector<std::string>& files) {
  std::set<std::string> checkpoints;  // the rank-0 model-states file of each ZeRO tag directory
  for (const auto& f : files)
    if (is_deepspeed_checkpoint_file(f)) checkpoints.insert(fs::path(f).parent_path().string());
  if (checkpoints.empty()) return;
  std::vector<std::string> kept;
  for (const auto& f : files) {
    const fs::path p(f);
    if (!checkpoints.count(p.parent_path().string()) || !is_zero_file_name(p.filename().string())) kept.push_back(f);
  }
  for (const auto& dir : checkpoints) kept.push_back(rank0_model_file(dir));
  files = std::move(kept);
}

std::string deepspeed_latest_problem(const std::string& latest_file) {
  const fs::path p(latest_file);
  if (p.filename() != "latest") return "";
  const std::string tag = read_tag(latest_file);
  static const std::regex deepspeed_tag(R"(^global_step\d+$)");
  if (tag.empty() || !std::regex_match(tag, deepspeed_tag)) return "";  // not DeepSpeed's (or a custom tag)
  std::error_code ec;
  if (fs::is_directory(p.parent_path() / tag, ec)) return "";
  return "names the DeepSpeed tag '" + tag + "' but there is no directory " + (p.parent_path() / tag).string();
}

}  // namespace muspec
