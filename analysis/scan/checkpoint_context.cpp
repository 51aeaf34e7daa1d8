#include "scan/checkpoint_context.h"

#include <filesystem>
#include <cmath>
#include <optional>
#include <regex>

#include "core/error.h"
#include "core/json_limits.h"

namespace muspec {

namespace fs = std::filesystem;

namespace {

/// Depth-limited, regular files only: a FIFO named config.json must not hang a scan.
nlohmann::json read_json(const fs::path& p) { return read_json_file(p.string()); }

/// A non-negative whole number, written as an integer or as a whole float (2e7, 20000000.0).
std::optional<int64_t> whole_number(const nlohmann::json& v) {
  if (v.is_number_integer()) return v.get<int64_t>() >= 0 ? std::optional<int64_t>(v.get<int64_t>()) : std::nullopt;
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d >= 0 && d < 9.2e18 && std::floor(d) == d) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

int64_t count_field(const nlohmann::json& j, const char* key, RunManifest& m) {
  if (!j.contains(key)) return 0;
  if (const auto v = whole_number(j[key])) return *v;
  m.notes.push_back(m.source + ": '" + key + "' must be a non-negative whole number, got " + j[key].dump().substr(0, 40) + "; ignored");
  return 0;
}

std::string string_field(const nlohmann::json& j, const char* key, RunManifest& m) {
  if (!j.contains(key)) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  m.notes.push_back(m.source + ": '" + key + "' must be a string; ignored");
  return "";
}

}  // namespace

RunManifest manifest_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(source, "", "a run manifest must be a JSON object");
  RunManifest m;
  m.source = source;
  m.run = string_field(j, "run", m);
  m.params = count_field(j, "params", m);
  m.non_embedding_params = count_field(j, "non_embedding_params", m);
  const int64_t layers = count_field(j, "layers", m);
  if (layers > 100000) m.notes.push_back(source + ": 'layers' " + std::to_string(layers) + " is implausible; ignored");
  else m.layers = static_cast<int>(layers);
  m.architecture = string_field(j, "architecture", m);
  m.recipe = string_field(j, "recipe", m);
  if (j.contains("param_order")) {
    bool ok = j["param_order"].is_array();
    for (size_t i = 0; ok && i < j["param_order"].size(); ++i) ok = j["param_order"][i].is_string();
    if (ok) m.param_order = j["param_order"].get<std::vector<std::string>>();
    else m.notes.push_back(source + ": 'param_order' must be a list of parameter names; ignored");
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
  // The nearest ancestor named like a step is the step directory; its parent is the run. A step
  // directory inside another (HF Trainer + DeepSpeed: checkpoint-N/global_stepN/) is part of
  // the outer one, which also holds the trainer's files.
  fs::path run_dir = dir;
  for (fs::path p = dir; !p.empty() && p != p.root_path(); p = p.parent_path()) {
    if (const int64_t s = step_from_directory_name(p.filename().string()); s >= 0) {
      c.step = s;
      c.step_dir = p.string();
      while (p.has_parent_path() && p.parent_path() != p && step_from_directory_name(p.parent_path().filename().string()) >= 0) {
        p = p.parent_path();
        c.step = step_from_directory_name(p.filename().string());
        c.step_dir = p.string();
      }
      run_dir = p.parent_path();
      break;
    }
  }
  // A muspec-run.json in the file's directory or any ancestor up to the run directory wins.
  for (fs::path p = dir;; p = p.parent_path()) {
    if (fs::exists(p / "muspec-run.json")) {
      run_dir = p;
      c.manifest = std::make_shared<RunManifest>(manifest_from_json(read_json(p / "muspec-run.json"), (p / "muspec-run.json").string()));
      c.notes = c.manifest->notes;
      break;
    }
    if (p == run_dir || p == p.root_path() || p.empty()) break;
  }
  c.run_dir = run_dir.string();
  c.run = c.manifest && !c.manifest->run.empty() ? c.manifest->run : run_dir.filename().string();
  for (const auto& m : sweep)
    if (m.run == c.run) c.manifest = std::make_shared<RunManifest>(m), c.notes = m.notes;
  for (const fs::path& p : {dir, fs::path(c.step_dir), run_dir}) {
    if (!p.empty() && fs::exists(p / "config.json")) {
      c.config = std::make_shared<ModelConfig>(parse_model_config((p / "config.json").string()));
      break;
    }
  }
  for (const fs::path& p : {dir, fs::path(c.step_dir), run_dir}) {  // Meta-Llama / torchtitan: params.json
    if (c.config || p.empty() || !fs::exists(p / "params.json")) continue;
    try {
      ModelConfig mc = model_config_from_json(read_json(p / "params.json"), (p / "params.json").string());
      mc.family = "meta-llama";
      c.config = std::make_shared<ModelConfig>(mc);
    } catch (const InputError& e) {  // e.g. Llama-2's "vocab_size": -1 placeholder
      c.notes.push_back(std::string(e.what()) + " (params.json ignored)");
    }
  }
  if (c.step < 0 && fs::exists(dir / "trainer_state.json")) {
    const auto ts = read_json(dir / "trainer_state.json");
    if (ts.is_object() && ts.contains("global_step") && ts["global_step"].is_number_integer()) c.step = ts["global_step"].get<int64_t>();
  }
  return c;
}

}  // namespace muspec
