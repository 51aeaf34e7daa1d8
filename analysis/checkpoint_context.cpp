#include "checkpoint_context.h"

#include <filesystem>
#include <fstream>
#include <regex>

#include "core/error.h"

namespace muspec {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw InputError(p.string(), "", "cannot open");
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(p.string(), "", std::string("not valid JSON: ") + e.what());
  }
}

int64_t positive_int(const nlohmann::json& j, const char* key, const std::string& source) {
  if (!j.contains(key)) return 0;
  const auto& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0) throw InputError(source, "", std::string("'") + key + "' must be a non-negative integer");
  return v.get<int64_t>();
}

std::string string_field(const nlohmann::json& j, const char* key, const std::string& source) {
  if (!j.contains(key)) return "";
  if (!j[key].is_string()) throw InputError(source, "", std::string("'") + key + "' must be a string");
  return j[key].get<std::string>();
}

}  // namespace

RunManifest manifest_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(source, "", "a run manifest must be a JSON object");
  RunManifest m;
  m.source = source;
  m.run = string_field(j, "run", source);
  m.params = positive_int(j, "params", source);
  m.non_embedding_params = positive_int(j, "non_embedding_params", source);
  m.layers = static_cast<int>(positive_int(j, "layers", source));
  m.architecture = string_field(j, "architecture", source);
  m.recipe = string_field(j, "recipe", source);
  if (j.contains("param_order")) {
    if (!j["param_order"].is_array()) throw InputError(source, "", "'param_order' must be a list of parameter names");
    for (const auto& n : j["param_order"]) {
      if (!n.is_string()) throw InputError(source, "", "'param_order' must be a list of parameter names");
      m.param_order.push_back(n.get<std::string>());
    }
  }
  return m;
}

std::vector<RunManifest> read_sweep_manifest(const std::string& path) {
  const nlohmann::json j = read_json(path);
  const nlohmann::json& runs = j.is_object() && j.contains("runs") ? j["runs"] : j;
  if (!runs.is_array()) throw InputError(path, "", "expected a list of run manifests or {\"runs\": [...]}");
  std::vector<RunManifest> out;
  for (const auto& r : runs) out.push_back(manifest_from_json(r, path));
  return out;
}

int64_t step_from_directory_name(const std::string& name) {
  static const std::regex re(R"(^(?:checkpoint|step|iter|global_step|global-step|ckpt)[-_]?0*(\d{1,15})$)", std::regex::icase);
  std::smatch m;
  if (std::regex_match(name, m, re)) return std::stoll(m[1].str());
  return -1;
}

CheckpointContext context_of(const std::string& file, const std::vector<RunManifest>& sweep) {
  CheckpointContext c;
  const fs::path dir = fs::absolute(file).parent_path();
  // The nearest ancestor named like a step is the step directory; its parent is the run.
  fs::path run_dir = dir;
  for (fs::path p = dir; !p.empty() && p != p.root_path(); p = p.parent_path()) {
    if (const int64_t s = step_from_directory_name(p.filename().string()); s >= 0) {
      c.step = s;
      c.step_dir = p.string();
      run_dir = p.parent_path();
      break;
    }
  }
  // A muspec-run.json in the file's directory or any ancestor up to the run directory wins.
  for (fs::path p = dir;; p = p.parent_path()) {
    if (fs::exists(p / "muspec-run.json")) {
      run_dir = p;
      c.manifest = std::make_shared<RunManifest>(manifest_from_json(read_json(p / "muspec-run.json"), (p / "muspec-run.json").string()));
      break;
    }
    if (p == run_dir || p == p.root_path() || p.empty()) break;
  }
  c.run_dir = run_dir.string();
  c.run = c.manifest && !c.manifest->run.empty() ? c.manifest->run : run_dir.filename().string();
  for (const auto& m : sweep)
    if (m.run == c.run) c.manifest = std::make_shared<RunManifest>(m);
  for (const fs::path& p : {dir, fs::path(c.step_dir), run_dir}) {
    if (!p.empty() && fs::exists(p / "config.json")) {
      c.config = std::make_shared<ModelConfig>(parse_model_config((p / "config.json").string()));
      break;
    }
  }
  if (c.step < 0 && fs::exists(dir / "trainer_state.json")) {
    const auto ts = read_json(dir / "trainer_state.json");
    if (ts.is_object() && ts.contains("global_step") && ts["global_step"].is_number_integer()) c.step = ts["global_step"].get<int64_t>();
  }
  return c;
}

}  // namespace muspec
