#include "scan/step_model.h"

#include <filesystem>
#include <map>
#include <regex>
#include <tuple>

#include "core/dtype.h"
#include "core/error.h"
#include "io/torch_file.h"
#include "model/model_config.h"
#include "model/naming.h"

namespace muspec {

namespace {

using pickle::Kind;
using pickle::ValuePtr;

/// Files a trainer writes beside the weights that hold tensors but no model parameters.
std::string non_model_file(const std::string& path) {
  static const std::regex re(R"(^(rng_state(_\d+)?\.pth|scheduler\.pt|scaler\.pt|training_args\.bin|lr_scheduler\.pt)$)");
  const std::string base = std::filesystem::path(path).filename().string();
  return std::regex_match(base, re) ? base + " holds trainer state, not model weights" : "";
}

int64_t numel(const std::vector<int64_t>& shape) {  // saturating: shapes come from untrusted files
  int64_t n = 1;
  for (int64_t d : shape)
    if (d == 0) return 0;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return INT64_MAX;
  return n;
}

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

bool is_embedding_or_head_name(const std::string& name) {
  return name.find("embed") != std::string::npos || name.find("lm_head") != std::string::npos || name.find("wte") != std::string::npos ||
         name.find("wpe") != std::string::npos || name.find("tok_embeddings") != std::string::npos || name == "output.weight";
}

/// nanoGPT's model_args (a dict of numbers) as JSON for model_config_from_json.
nlohmann::json scalar_dict(const pickle::Value& d) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i + 1 < d.items.size(); i += 2) {
    const auto& k = *d.items[i];
    const auto& v = *d.items[i + 1];
    if (k.kind != Kind::String) continue;
    if (v.kind == Kind::Int) j[k.text] = v.integer;
    else if (v.kind == Kind::Float) j[k.text] = v.real;
    else if (v.kind == Kind::Bool) j[k.text] = v.boolean;
    else if (v.kind == Kind::String) j[k.text] = v.text;
  }
  return j;
}

void read_torch_root(const TorchFile& tf, SourceRole& role) {
  const ValuePtr& root = tf.root();
  if (!root || root->kind != Kind::Dict) return;
  for (const char* key : {"iter_num", "global_step", "step", "iteration"}) {  // never "epoch"
    const ValuePtr v = root->get(key);
    if (v && v->kind == Kind::Int && v->integer >= 0) {
      role.step = v->integer;
      break;
    }
  }
  if (const ValuePtr args = root->get("model_args"); args && args->kind == Kind::Dict) {
    try {
      role.config = std::make_shared<ModelConfig>(model_config_from_json(scalar_dict(*args), tf.path() + " (model_args)"));
    } catch (const InputError&) {
      // a model_args without usable sizes: the labels simply lack the config
    }
  }
  for (const char* key : {"model", "state_dict", "model_state_dict", "module"}) {
    const ValuePtr v = root->get(key);
    if (v && v->kind == Kind::Dict) {
      role.weight_prefix = std::string(key) + "/";
      break;
    }
  }
}

/// Optimizer state stored under FQN names in a tensor source that is not a torch pickle
/// (torchtitan's DCP keys, DeepSpeed ZeRO partitions reassembled by muspec):
/// "optimizer.state.<fqn>.<state key>".
std::optional<OptimizerLayout> fqn_named_state(const TensorSource& source) {
  static const std::regex re(R"(^optimizer\.state\.(.+)\.(momentum_buffer|exp_avg|exp_avg_sq|moment1|moment2)$)");
  OptimizerLayout layout;
  layout.prefix = "optimizer.";
  layout.fqn_keyed = true;
  const auto& entries = source.entries();
  std::smatch m;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!std::regex_match(entries[i].name, m, re)) continue;
    OptimizerStateTensor t;
    t.entry = i;
    t.param_key = m[1].str();
    t.state_key = m[2].str();
    t.shape = entries[i].shape;
    layout.tensors.push_back(std::move(t));
  }
  if (layout.tensors.empty()) return std::nullopt;
  return layout;
}

}  // namespace

SourceRole source_role(const TensorSource& source) {
  SourceRole role;
  role.not_weights = non_model_file(source.path());
  if (const auto* tf = dynamic_cast<const TorchFile*>(&source)) {
    role.object_paths = true;
    role.optimizer = find_optimizer_layout(*tf);
    read_torch_root(*tf, role);
    if (role.optimizer && role.weight_prefix.empty()) role.not_weights = "optimizer state";
  } else {
    role.optimizer = fqn_named_state(source);  // its other entries stay weights
  }
  return role;
}

std::string weight_parameter_name(const std::string& name, const SourceRole& role) {
  if (!role.not_weights.empty()) return "";
  if (!role.weight_prefix.empty()) return name.compare(0, role.weight_prefix.size(), role.weight_prefix) == 0 ? name.substr(role.weight_prefix.size()) : "";
  // A torch state_dict has no nested paths; other formats' names are tensor names ('/' allowed).
  return !role.object_paths || name.find('/') == std::string::npos ? name : "";
}

void add_to_step(StepModel& step, const TensorSource& source, const SourceRole& role) {
  if (role.optimizer)
    for (const auto& t : role.optimizer->tensors) step.state_kinds.insert(state_kind(t.state_key));
  std::set<size_t> state_entries;  // FQN-named state beside the weights in the same source
  if (role.optimizer)
    for (const auto& t : role.optimizer->tensors) state_entries.insert(t.entry);
  const auto* tf = dynamic_cast<const TorchFile*>(&source);
  std::set<std::tuple<std::string, int64_t, std::vector<int64_t>, std::vector<int64_t>>> storages;  // tied weights
  const auto& entries = source.entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    const TensorEntry& e = entries[i];
    const std::string name = state_entries.count(i) ? "" : weight_parameter_name(e.name, role);
    if (name.empty() || !e.dtype || !dtype_is_decodable_float(*e.dtype)) continue;
    const std::string canon = ParameterNamer::canonical_name(name);
    if (is_known_buffer(canon, e.shape)) continue;
    if (!step.counted.insert(canon).second) continue;  // also in another file of the step (HF Trainer + DeepSpeed)
    if (tf) {
      const TorchTensorRef& r = tf->tensor_ref(i);
      if (!storages.insert({r.storage_key, r.storage_offset, r.shape, r.strides}).second) continue;  // named_parameters() drops ties
    } else {
      step.pickle_order = false;
    }
    step.params.push_back({name, e.shape});
    step.total = saturating_add(step.total, numel(e.shape));
    if (!is_embedding_or_head_name(canon)) step.non_embedding = saturating_add(step.non_embedding, numel(e.shape));
    step.max_block = std::max(step.max_block, generic_block_index(canon));
  }
}

void finish_step(StepModel& step) {
  if (step.params.empty()) {
    step.order_problem = "no model weights in this checkpoint step";
    return;
  }
  if (step.pickle_order) {
    step.order_source = "file";
    return;
  }
  std::vector<ModelParam> canon;
  for (const auto& p : step.params) canon.push_back({ParameterNamer::canonical_name(p.name), p.shape});
  if (auto ordered = registration_order(canon, &step.order_problem)) {
    step.params = std::move(*ordered);
    step.order_source = "architecture";
  }  // else: a sorted file order is not named_parameters() order; recipes are not tried
}

std::string auto_kind(const StepModel& step) {
  if (step.state_kinds.count("momentum")) return "momentum";
  if (step.state_kinds.count("exp_avg")) return "exp_avg";
  return "weights";
}

}  // namespace muspec
