#include "scan/labeling.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "core/json_limits.h"
#include "scan/step_model.h"

namespace muspec {

namespace {

const std::vector<std::string> kKinds = {"auto", "weights", "momentum", "exp_avg", "exp_avg_sq", "all"};

std::vector<std::string> read_param_map(const std::string& path) {
  if (path.empty()) return {};
  nlohmann::json j;
  try {
    j = read_json_file(path);
  } catch (const InputError& e) {
    throw UsageError("--param-map " + path + ": " + e.reason());
  }
  std::vector<std::string> names;
  if (!j.is_array()) throw UsageError("--param-map " + path + ": expected a JSON list of parameter names in optimizer id order");
  for (const auto& n : j) {
    if (!n.is_string()) throw UsageError("--param-map " + path + ": every entry must be a parameter name");
    names.push_back(n.get<std::string>());
  }
  return names;
}

/// Notes, each distinct text once, with how many checkpoint steps it concerns.
class NoteLog {
 public:
  void add(const std::string& text, const std::string& step = "") {
    if (scopes_.find(text) == scopes_.end()) order_.push_back(text);
    scopes_[text].insert(step);
  }
  void flush(std::vector<std::string>& out) const {
    for (const auto& t : order_) {
      const size_t n = scopes_.at(t).size();
      out.push_back(n > 1 ? t + " (" + std::to_string(n) + " checkpoints)" : t);
    }
  }

 private:
  std::vector<std::string> order_;
  std::map<std::string, std::set<std::string>> scopes_;
};

/// The key that groups the files of one checkpoint (a step directory, or a file's directory).
std::string step_key(const std::string& file, const CheckpointContext& c) {
  return c.step_dir.empty() ? std::filesystem::path(file).parent_path().string() : c.step_dir;
}

bool weight_selected(const std::string& kind) { return kind == "weights" || kind == "all"; }
bool state_selected(const std::string& kind, const std::string& state_kind_name) { return kind == "all" || kind == state_kind_name; }

std::string run_label(const CheckpointContext& c) { return "run '" + c.run + "'"; }

/// Parameter names for the optimizer state of one source; notes say what could not be named.
std::map<std::string, std::string> state_names(const OptimizerLayout& layout, const StepModel& step, const RunManifest* m,
                                               const std::vector<std::string>& param_map, const LabelOptions& o,
                                               const std::string& where, const std::string& scope, NoteLog& log) {
  const std::vector<std::string>& order = !param_map.empty() ? param_map : (m ? m->param_order : param_map);
  const std::string recipe = !o.recipe.empty() ? o.recipe : (m ? m->recipe : "");
  const bool order_known = !step.order_source.empty();
  NameRecovery rec;
  if (!order.empty() || order_known || layout.fqn_keyed) {
    rec = recover_parameter_names(layout, order, order_known || !order.empty() ? recipe : "", step.params);
  } else {
    bool named = !layout.groups.empty();
    for (const auto& g : layout.groups) named &= g.param_names.size() == g.params.size() && !g.params.empty();
    rec = named ? recover_parameter_names(layout, {}, "", {}) : NameRecovery{};
    if (!named) rec.problems.push_back(step.order_problem.empty() ? "the model's parameter order is unknown" : step.order_problem);
  }
  for (const auto& w : rec.warnings) log.add(where + ": " + w, scope);
  if (!rec.ok()) {
    std::string tried;
    for (const auto& t : rec.tried) tried += "\n    " + t;
    log.add(where + ": optimizer parameter names " + (rec.names.empty() ? "not recovered" : "recovered for some param groups only") +
            " (" + rec.problems.front() + "); unnamed state is labelled by id. Give --param-map, --recipe or a muspec-run.json" +
            (tried.empty() ? "" : "; recipes tried:" + tried),
            scope);
  }
  return rec.names;
}

int64_t layer_count(const LabelOptions& o, const CheckpointContext& c, const StepModel& step, const std::string& scope, NoteLog& log) {
  if (o.layers > 0) return o.layers;
  if (c.manifest && c.manifest->layers > 0) return c.manifest->layers;
  if (c.config && c.config->num_layers > 0) return c.config->num_layers;
  if (step.max_block < 0) return 0;
  log.add(run_label(c) + ": num_layers inferred as " + std::to_string(step.max_block + 1) +
          " from the highest block index among the weights (no config.json, model_args or manifest; --layers N sets it)",
          scope);
  return step.max_block + 1;
}

void label_entry(TensorLabel& L, const TensorEntry& e, const SourceRole& role, const std::map<size_t, const OptimizerStateTensor*>& state_of_entry,
                 size_t i, const std::map<std::string, std::string>& names, const std::string& kind, const std::string& kind_said) {
  if (const auto it = state_of_entry.find(i); it != state_of_entry.end()) {
    const OptimizerStateTensor& t = *it->second;
    L.kind = state_kind(t.state_key);
    const auto n = names.find(t.param_key);
    L.parameter = n != names.end() ? n->second : "state[" + t.param_key + "]";
    if (!state_selected(kind, L.kind)) L.skip_reason = "optimizer state '" + t.state_key + "' not selected (" + kind_said + ")";
    return;
  }
  L.parameter = weight_parameter_name(e.name, role);
  if (L.parameter.empty()) {
    L.kind = "other";
    L.parameter = e.name;
    L.skip_reason = role.not_weights.empty() ? "not part of the model's state dict" : "not model weights: " + role.not_weights;
  } else if (is_known_buffer(ParameterNamer::canonical_name(L.parameter), e.shape)) {
    L.kind = "buffer";
    L.skip_reason = "a buffer, not a parameter";
  } else if (!weight_selected(kind)) {
    L.skip_reason = "weights not selected (" + kind_said + ")";
  }
}

void identify(TensorLabel& L, const TensorEntry& e, const ParameterNamer& namer, int64_t layers, const CheckpointContext& c,
              const LabelOptions& o, const std::string& path, NoteLog& log) {
  const LayerIdentity id = namer.identify(L.parameter, e.shape);
  if (!id.parameter.empty() && L.parameter.rfind("state[", 0) != 0) L.parameter = id.parameter;
  L.op_type = operator_type_name(id.op);
  L.layer = id.layer;
  L.num_layers = layers;
  L.muon = id.muon_eligible;
  L.transposed = id.stored_transposed && e.shape.size() == 2;
  try {
    L.rel_depth = relative_depth(id.layer, static_cast<int>(layers));
  } catch (const UsageError&) {
    L.rel_depth = -1.0;
  }
  if (o.split_fused && id.fused != FusedLayout::None && e.shape.size() == 2) {
    if (!c.config) {
      log.add(path + ": '" + e.name + "' is fused but no config.json gives the head layout; not split");
    } else {
      try {
        L.parts = fused_parts(id, *c.config, e.shape);
      } catch (const InputError& err) {
        log.add(std::string(err.what()) + "; not split");
      }
    }
  }
}

}  // namespace

std::vector<SourceLabels> label_sources(const std::vector<std::unique_ptr<TensorSource>>& sources, const LabelOptions& o,
                                        std::vector<std::string>& notes) {
  if (std::find(kKinds.begin(), kKinds.end(), o.kind) == kKinds.end())
    throw UsageError("--kind '" + o.kind + "': expected auto, weights, momentum, exp_avg, exp_avg_sq or all");
  if (o.param_count != "total" && o.param_count != "non-embedding")
    throw UsageError("--param-count '" + o.param_count + "': expected total or non-embedding");
  if (o.layers < 0) throw UsageError("--layers must be a positive number of blocks");
  const std::vector<std::string> param_map = read_param_map(o.param_map);
  NoteLog log;

  // Stage 1: where each file sits, and what it holds.
  std::vector<SourceLabels> out(sources.size());
  std::vector<SourceRole> roles(sources.size());
  for (size_t s = 0; s < sources.size(); ++s) {
    try {
      out[s].context = context_of(sources[s]->path(), o.sweep);
    } catch (const InputError& e) {
      log.add(std::string(e.what()) + " (ignored; labels may be incomplete)");
    }
    for (const auto& n : out[s].context.notes) log.add(n);
    roles[s] = source_role(*sources[s]);
    CheckpointContext& c = out[s].context;
    if (c.step < 0 && roles[s].step >= 0) c.step = roles[s].step;
    if (!c.config && roles[s].config) c.config = roles[s].config;
  }

  // Stage 2: the model of each checkpoint step.
  std::map<std::string, StepModel> steps;
  for (size_t s = 0; s < sources.size(); ++s) add_to_step(steps[step_key(sources[s]->path(), out[s].context)], *sources[s], roles[s]);
  for (auto& [key, st] : steps) finish_step(st);

  // Stage 3: label every entry.
  for (size_t s = 0; s < sources.size(); ++s) {
    SourceLabels& sl = out[s];
    const CheckpointContext& c = sl.context;
    const std::string scope = step_key(sources[s]->path(), c);
    const StepModel& st = steps[scope];
    const std::string kind = o.kind != "auto" ? o.kind : auto_kind(st);
    const std::string kind_said = o.kind != "auto" ? "--kind " + kind : "--kind auto chose " + kind;
    const RunManifest* m = c.manifest.get();
    const bool non_emb = o.param_count == "non-embedding";
    if (m && m->params > 0) {
      sl.model_params = non_emb && m->non_embedding_params > 0 ? m->non_embedding_params : m->params;
      sl.params_source = non_emb && m->non_embedding_params > 0 ? "manifest:non-embedding" : "manifest";
    } else if (st.total > 0) {
      sl.model_params = non_emb ? st.non_embedding : st.total;
      sl.params_source = non_emb ? "weights:non-embedding" : "weights";
    }
    std::string family = o.family;
    if (family.empty() && m) family = resolve_family_hint(m->architecture);
    if (family.empty() && c.config) family = c.config->family;
    ParameterNamer namer(family);
    for (const auto& r : o.op_rules) namer.add_override(r);
    const int64_t layers = layer_count(o, c, st, scope, log);

    std::map<std::string, std::string> names;  // optimizer param key -> name
    std::map<size_t, const OptimizerStateTensor*> state_of_entry;
    if (const auto& layout = roles[s].optimizer) {
      bool selected = false;
      for (const auto& t : layout->tensors) {
        state_of_entry[t.entry] = &t;
        selected |= state_selected(kind, state_kind(t.state_key));
      }
      if (selected) names = state_names(*layout, st, m, param_map, o, run_label(c), scope, log);
    }
    const auto& entries = sources[s]->entries();
    sl.tensors.resize(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      label_entry(sl.tensors[i], entries[i], roles[s], state_of_entry, i, names, kind, kind_said);
      identify(sl.tensors[i], entries[i], namer, layers, c, o, sources[s]->path(), log);
    }
  }
  log.flush(notes);
  return out;
}

}  // namespace muspec
