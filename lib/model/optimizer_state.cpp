#include "model/optimizer_state.h"

#include <algorithm>
#include <regex>
#include <set>

#include "core/error.h"
#include "io/torch_file.h"

namespace muspec {

using pickle::Kind;
using pickle::Value;
using pickle::ValuePtr;

namespace {

std::string key_text(const Value& k) {
  if (k.kind == Kind::String) return k.text;
  if (k.kind == Kind::Int) return std::to_string(k.integer);
  return "";
}

nlohmann::json scalar_json(const Value& v) {
  switch (v.kind) {
    case Kind::Bool: return v.boolean;
    case Kind::Int: return v.integer;
    case Kind::Float: return v.real;
    case Kind::String: return v.text;
    case Kind::None: return nullptr;
    case Kind::Tuple: case Kind::List: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& x : v.items) {
        nlohmann::json j = scalar_json(*x);
        if (j.is_object()) return j;
        a.push_back(j);
      }
      return a;
    }
    default: return nlohmann::json::object();  // not a scalar: left out
  }
}

const ValuePtr find_state_dict(const ValuePtr& root, std::string* prefix) {
  auto is_optimizer = [](const ValuePtr& v) { return v && v->kind == Kind::Dict && v->get("state") && v->get("param_groups"); };
  if (is_optimizer(root)) return root;
  for (const char* k : {"optimizer", "optimizer_state_dict", "optim", "opt", "optimizer_state"}) {
    if (root && root->kind == Kind::Dict && is_optimizer(root->get(k))) {
      *prefix = std::string(k) + "/";
      return root->get(k);
    }
  }
  return nullptr;
}

bool is_embedding_or_head(const std::string& name) {
  static const std::regex re(R"((^|\.)(embed_tokens|embed_in|embed_out|wte|wpe|lm_head|tok_embeddings|output)\.)");
  return std::regex_search(name, re) || name.find("embed") != std::string::npos;
}

bool is_hidden_matrix(const ModelParam& p) { return p.shape.size() >= 2 && !is_embedding_or_head(p.name); }

bool is_no_decay(const std::string& name) {  // transformers' get_decay_parameter_names() rule
  static const std::regex re(R"(bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)|ln_)", std::regex::icase);
  return std::regex_search(name, re);
}

/// The id order a recipe implies: names of ids 0, 1, 2, ...
std::vector<const ModelParam*> recipe_order(const std::string& recipe, const std::vector<ModelParam>& model, std::vector<std::string>& warnings) {
  std::vector<const ModelParam*> all;
  std::set<std::string> seen;
  for (const auto& p : model)
    if (seen.insert(p.name).second) all.push_back(&p);  // named_parameters() drops duplicates
  auto split = [&](auto first) {
    std::vector<const ModelParam*> a, b;
    for (auto* p : all) (first(*p) ? a : b).push_back(p);
    return std::make_pair(a, b);
  };
  if (recipe == "plain") return all;
  std::pair<std::vector<const ModelParam*>, std::vector<const ModelParam*>> parts;
  if (recipe == "nanogpt") parts = split([](const ModelParam& p) { return p.shape.size() >= 2; });
  else if (recipe == "hf-trainer") parts = split([](const ModelParam& p) { return !is_no_decay(p.name); });
  else if (recipe == "muon-then-adam" || recipe == "muon-sorted") parts = split(is_hidden_matrix);
  else throw UsageError("unknown name recipe '" + recipe + "' (expected plain, hf-trainer, nanogpt, muon-sorted or muon-then-adam)");
  if (recipe == "muon-sorted") {
    // torch.Size compares lexicographically; the sort is stable, so equal shapes keep model order.
    std::stable_sort(parts.first.begin(), parts.first.end(), [](const ModelParam* a, const ModelParam* b) { return a->shape > b->shape; });
    std::map<std::vector<int64_t>, int> count;
    for (auto* p : parts.first) ++count[p->shape];
    for (const auto& [shape, n] : count)
      if (n > 1) {
        warnings.push_back("muon-sorted: " + std::to_string(n) + " parameters share a shape; their order is assumed to be model order (stable sort) and cannot be checked");
        break;
      }
  }
  parts.first.insert(parts.first.end(), parts.second.begin(), parts.second.end());
  return parts.first;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

/// Checks a candidate id -> name mapping against the state tensors' shapes.
void check_shapes(const OptimizerLayout& layout, const std::map<std::string, std::vector<int64_t>>& shape_of_name, NameRecovery& r) {
  for (const auto& t : layout.tensors) {
    if (t.shape.empty()) continue;  // 0-d state such as Adam's step
    auto it = r.names.find(t.param_key);
    if (it == r.names.end()) {
      r.problems.push_back("state of parameter " + t.param_key + " has no name in this mapping");
      continue;
    }
    auto s = shape_of_name.find(it->second);
    if (s != shape_of_name.end() && s->second != t.shape)
      r.problems.push_back("id " + t.param_key + " -> '" + it->second + "': state '" + t.state_key + "' has shape " + shape_text(t.shape) +
                           " but the parameter has shape " + shape_text(s->second));
  }
}

}  // namespace

const std::vector<std::string>& name_recipes() {
  static const std::vector<std::string> r = {"plain", "hf-trainer", "nanogpt", "muon-sorted", "muon-then-adam"};
  return r;
}

std::string state_kind(const std::string& k) {
  if (k == "momentum_buffer") return "momentum";
  if (k == "exp_avg" || k == "moment1") return "exp_avg";
  if (k == "exp_avg_sq" || k == "moment2") return "exp_avg_sq";
  return k;
}

std::optional<OptimizerLayout> find_optimizer_layout(const TorchFile& file) {
  OptimizerLayout layout;
  const ValuePtr sd = find_state_dict(file.root(), &layout.prefix);
  if (!sd) return std::nullopt;
  const ValuePtr groups = sd->get("param_groups");
  if (groups->kind == Kind::List) {
    for (const auto& g : groups->items) {
      if (g->kind != Kind::Dict) continue;
      ParamGroupInfo info;
      for (size_t i = 0; i + 1 < g->items.size(); i += 2) {
        const std::string k = key_text(*g->items[i]);
        const ValuePtr& v = g->items[i + 1];
        if (k == "params" && (v->kind == Kind::List || v->kind == Kind::Tuple)) {
          for (const auto& x : v->items) info.params.push_back(key_text(*x));
        } else if (k == "param_names" && (v->kind == Kind::List || v->kind == Kind::Tuple)) {
          for (const auto& x : v->items) info.param_names.push_back(key_text(*x));
        } else {
          nlohmann::json j = scalar_json(*v);
          if (!j.is_object()) info.hyper[k] = j;
        }
      }
      layout.groups.push_back(std::move(info));
    }
  }
  // State tensors are entries named "<prefix>state/<key>/<state_key>".
  const std::string head = layout.prefix + "state/";
  for (size_t i = 0; i < file.entries().size(); ++i) {
    const auto& e = file.entries()[i];
    if (e.name.compare(0, head.size(), head) != 0) continue;
    const std::string rest = e.name.substr(head.size());
    const auto slash = rest.rfind('/');
    if (slash == std::string::npos) continue;
    OptimizerStateTensor t;
    t.entry = i;
    t.param_key = rest.substr(0, slash);
    t.state_key = rest.substr(slash + 1);
    t.shape = e.shape;
    const bool numeric = !t.param_key.empty() && std::all_of(t.param_key.begin(), t.param_key.end(), ::isdigit);
    if (numeric) t.param_id = std::stoll(t.param_key);
    else layout.fqn_keyed = true;
    layout.tensors.push_back(std::move(t));
  }
  return layout;
}

NameRecovery recover_parameter_names(const OptimizerLayout& layout, const std::vector<std::string>& explicit_order,
                                     const std::string& recipe, const std::vector<ModelParam>& model) {
  NameRecovery r;
  std::map<std::string, std::vector<int64_t>> shape_of_name;
  for (const auto& p : model) shape_of_name[p.name] = p.shape;
  std::vector<std::string> ids;  // every id in group order
  for (const auto& g : layout.groups) ids.insert(ids.end(), g.params.begin(), g.params.end());

  bool have_param_names = !layout.groups.empty();
  for (const auto& g : layout.groups) have_param_names &= g.param_names.size() == g.params.size() && !g.params.empty();
  if (have_param_names) {
    r.source = "param_names";
    for (const auto& g : layout.groups)
      for (size_t i = 0; i < g.params.size(); ++i) r.names[g.params[i]] = g.param_names[i];
  } else if (layout.fqn_keyed) {
    r.source = "fqn";
    for (const auto& t : layout.tensors) r.names[t.param_key] = t.param_key;
  } else {
    std::vector<std::string> order = explicit_order;
    r.source = "explicit";
    if (order.empty()) {
      if (recipe.empty() || model.empty()) {
        r.problems.push_back("no param_names in the optimizer state, no mapping file or manifest param_order, and no recipe with model weights");
        return r;
      }
      r.source = "recipe:" + recipe;
      for (const ModelParam* p : recipe_order(recipe, model, r.warnings)) order.push_back(p->name);
    }
    if (!ids.empty() && order.size() != ids.size())
      r.problems.push_back(r.source + " lists " + std::to_string(order.size()) + " parameters but the optimizer's groups hold " + std::to_string(ids.size()));
    for (size_t i = 0; i < ids.size() && i < order.size(); ++i) r.names[ids[i]] = order[i];
    if (ids.empty())  // groups missing: ids are positions
      for (size_t i = 0; i < order.size(); ++i) r.names[std::to_string(i)] = order[i];
  }
  check_shapes(layout, shape_of_name, r);
  return r;
}

}  // namespace muspec
