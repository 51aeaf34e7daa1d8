#include "labeling.h"

#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "io/torch_file.h"
#include "model/optimizer_state.h"

namespace muspec {

namespace {

const std::vector<std::string> kKinds = {"auto", "weights", "momentum", "exp_avg", "exp_avg_sq", "all"};

std::vector<std::string> read_param_map(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream f(path);
  if (!f) throw UsageError("--param-map " + path + ": cannot open the file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("--param-map " + path + ": not valid JSON: " + e.what());
  }
  std::vector<std::string> names;
  if (!j.is_array()) throw UsageError("--param-map " + path + ": expected a JSON list of parameter names in optimizer id order");
  for (const auto& n : j) {
    if (!n.is_string()) throw UsageError("--param-map " + path + ": every entry must be a parameter name");
    names.push_back(n.get<std::string>());
  }
  return names;
}

/// The key that groups the files of one checkpoint (a step directory, or a file's directory).
std::string step_key(const std::string& file, const CheckpointContext& c) {
  return c.step_dir.empty() ? std::filesystem::path(file).parent_path().string() : c.step_dir;
}

struct Step {
  std::vector<ModelParam> model;   // weights in file order
  int64_t total = 0, non_embedding = 0;
};

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

int64_t numel(const std::vector<int64_t>& shape) {  // saturating: shapes come from untrusted files
  int64_t n = 1;
  for (int64_t d : shape)
    if (d == 0) return 0;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return INT64_MAX;
  return n;
}

bool weight_selected(const std::string& kind) { return kind == "weights" || kind == "all"; }
bool state_selected(const std::string& kind, const std::string& state_kind_name) { return kind == "all" || kind == state_kind_name; }

}  // namespace

std::vector<SourceLabels> label_sources(const std::vector<std::unique_ptr<TensorSource>>& sources, const LabelOptions& o,
                                        std::vector<std::string>& notes) {
  if (std::find(kKinds.begin(), kKinds.end(), o.kind) == kKinds.end())
    throw UsageError("--kind '" + o.kind + "': expected auto, weights, momentum, exp_avg, exp_avg_sq or all");
  if (o.param_count != "total" && o.param_count != "non-embedding")
    throw UsageError("--param-count '" + o.param_count + "': expected total or non-embedding");
  const std::vector<std::string> param_map = read_param_map(o.param_map);

  // Stage 1: contexts and optimizer layouts.
  std::vector<SourceLabels> out(sources.size());
  std::vector<std::optional<OptimizerLayout>> layouts(sources.size());
  std::map<std::string, bool> step_has_optimizer;  // --kind auto decides per checkpoint step
  for (size_t s = 0; s < sources.size(); ++s) {
    try {
      out[s].context = context_of(sources[s]->path(), o.sweep);
    } catch (const InputError& e) {
      notes.push_back(std::string(e.what()) + " (ignored; labels may be incomplete)");
    }
    if (const auto* tf = dynamic_cast<const TorchFile*>(sources[s].get())) layouts[s] = find_optimizer_layout(*tf);
    step_has_optimizer[step_key(sources[s]->path(), out[s].context)] |= layouts[s].has_value();
  }

  // Stage 2: the model parameters of each checkpoint step (weights, in file order).
  std::map<std::string, Step> steps;
  for (size_t s = 0; s < sources.size(); ++s) {
    Step& st = steps[step_key(sources[s]->path(), out[s].context)];
    const std::string prefix = layouts[s] ? "model/" : "";
    for (const auto& e : sources[s]->entries()) {
      if (layouts[s] && e.name.compare(0, prefix.size(), prefix) != 0) continue;  // optimizer state
      const std::string name = e.name.substr(prefix.size());
      st.model.push_back({name, e.shape});
      st.total = saturating_add(st.total, numel(e.shape));
      if (name.find("embed") == std::string::npos && name.find("lm_head") == std::string::npos && name.find("wte") == std::string::npos &&
          name.find("wpe") == std::string::npos)
        st.non_embedding = saturating_add(st.non_embedding, numel(e.shape));
    }
  }

  // Stage 3: label every entry.
  for (size_t s = 0; s < sources.size(); ++s) {
    SourceLabels& sl = out[s];
    const CheckpointContext& c = sl.context;
    const Step& st = steps[step_key(sources[s]->path(), c)];
    const std::string kind = o.kind != "auto" ? o.kind : step_has_optimizer[step_key(sources[s]->path(), c)] ? "momentum" : "weights";
    const RunManifest* m = c.manifest.get();
    sl.model_params = m && m->params > 0 ? (o.param_count == "non-embedding" && m->non_embedding_params > 0 ? m->non_embedding_params : m->params)
                                         : (o.param_count == "non-embedding" ? st.non_embedding : st.total);
    std::string family = o.family;
    if (family.empty() && m) family = resolve_family_hint(m->architecture);
    if (family.empty() && c.config) family = c.config->family;
    ParameterNamer namer(family);
    for (const auto& r : o.op_rules) namer.add_override(r);
    const int64_t layers = c.config && c.config->num_layers > 0 ? c.config->num_layers : (m ? m->layers : 0);

    std::map<std::string, std::string> names;  // optimizer param key -> name
    std::map<size_t, const OptimizerStateTensor*> state_of_entry;
    if (layouts[s]) {
      for (const auto& t : layouts[s]->tensors) state_of_entry[t.entry] = &t;
      const std::vector<std::string>& order = !param_map.empty() ? param_map : (m ? m->param_order : param_map);
      const std::string recipe = !o.recipe.empty() ? o.recipe : (m ? m->recipe : "");
      const bool recipe_known = std::find(name_recipes().begin(), name_recipes().end(), recipe) != name_recipes().end();
      NameRecovery rec = recover_parameter_names(*layouts[s], order, recipe_known || !o.recipe.empty() ? recipe : "", st.model);
      for (const auto& w : rec.warnings) notes.push_back(sources[s]->path() + ": " + w);
      if (rec.ok()) names = rec.names;
      else notes.push_back(sources[s]->path() + ": optimizer parameter names not recovered (" + rec.problems.front() +
                           "); state is labelled by id. Give --param-map, --recipe or a muspec-run.json");
    }
    const auto& entries = sources[s]->entries();
    sl.tensors.resize(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      TensorLabel& L = sl.tensors[i];
      const auto it = state_of_entry.find(i);
      if (it != state_of_entry.end()) {
        const OptimizerStateTensor& t = *it->second;
        L.kind = state_kind(t.state_key);
        const auto n = names.find(t.param_key);
        L.parameter = n != names.end() ? n->second : "state[" + t.param_key + "]";
        if (!state_selected(kind, L.kind)) L.skip_reason = "optimizer state '" + t.state_key + "' not selected (--kind " + kind + ")";
      } else {
        L.kind = "weight";
        L.parameter = layouts[s] && entries[i].name.rfind("model/", 0) == 0 ? entries[i].name.substr(6) : entries[i].name;
        if (layouts[s] && entries[i].name.rfind("model/", 0) != 0) L.kind = "other";
        if (!weight_selected(kind)) L.skip_reason = "weights not selected (--kind " + kind + ")";
      }
      const LayerIdentity id = namer.identify(L.parameter, entries[i].shape);
      if (!id.parameter.empty()) L.parameter = L.parameter.rfind("state[", 0) == 0 ? L.parameter : id.parameter;
      L.op_type = operator_type_name(id.op);
      L.layer = id.layer;
      L.num_layers = layers;
      L.muon = id.muon_eligible;
      L.transposed = id.stored_transposed && entries[i].shape.size() == 2;
      try {
        L.rel_depth = relative_depth(id.layer, static_cast<int>(layers));
      } catch (const UsageError&) {
        L.rel_depth = -1.0;
      }
      if (o.split_fused && id.fused != FusedLayout::None && entries[i].shape.size() == 2) {
        if (!c.config) {
          notes.push_back(sources[s]->path() + ": '" + entries[i].name + "' is fused but no config.json gives the head layout; not split");
        } else {
          try {
            L.parts = fused_parts(id, *c.config, entries[i].shape);
          } catch (const InputError& e) {
            notes.push_back(std::string(e.what()) + "; not split");
          }
        }
      }
    }
  }
  return out;
}

}  // namespace muspec
