#include "model/optimizer_state.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "io/torch_file.h"
#include "model/naming.h"

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

/// An optimizer pickled whole (old checkpoints saved the torch.optim.Adam object itself) is an
/// object whose BUILD state is the dict that state_dict() would return, keyed by tensors.
ValuePtr dict_of(const ValuePtr& v) {
  return v && v->kind == Kind::Object && v->state && v->state->kind == Kind::Dict ? v->state : v;
}

const ValuePtr find_state_dict(const ValuePtr& root, std::string* prefix) {
  auto is_optimizer = [](const ValuePtr& v) { return v && v->kind == Kind::Dict && v->get("state") && v->get("param_groups"); };
  if (is_optimizer(dict_of(root))) return dict_of(root);
  for (const char* k : {"optimizer", "optimizer_state_dict", "optim", "opt", "optimizer_state"}) {
    if (root && root->kind == Kind::Dict && is_optimizer(dict_of(root->get(k)))) {
      *prefix = std::string(k) + "/";
      return dict_of(root->get(k));
    }
  }
  return nullptr;
}

bool is_embedding_or_head(const std::string& name) {
  static const std::regex re(R"((^|\.)(embed_tokens|embed_in|embed_out|wte|wpe|lm_head|tok_embeddings|output)\.)");
  return std::regex_search(name, re) || name.find("embed") != std::string::npos;
}

bool is_head(const std::string& name) {
  static const std::regex re(R"((^|\.)(lm_head|embed_out|output)\.)");
  return std::regex_search(name, re);
}

bool is_hidden_matrix(const ModelParam& p) { return p.shape.size() >= 2 && !is_embedding_or_head(p.name); }

bool is_no_decay(const std::string& name) {  // transformers' get_decay_parameter_names() rule
  static const std::regex re(R"(bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)|ln_)", std::regex::icase);
  return std::regex_search(name, re);
}

using Params = std::vector<const ModelParam*>;
using GroupNames = std::vector<std::vector<std::string>>;

Params select(const Params& all, bool (*keep)(const ModelParam&), bool want) {
  Params out;
  for (auto* p : all)
    if (keep(*p) == want) out.push_back(p);
  return out;
}

/// torch.Size compares lexicographically; the sort is stable, so equal shapes keep model order.
Params size_sorted(Params ps, std::vector<std::string>& warnings) {
  std::stable_sort(ps.begin(), ps.end(), [](const ModelParam* a, const ModelParam* b) { return a->shape > b->shape; });
  std::map<std::vector<int64_t>, int> count;
  for (auto* p : ps) ++count[p->shape];
  for (const auto& [shape, n] : count)
    if (n > 1) {
      warnings.push_back("size-sorted recipes: " + std::to_string(n) +
                         " parameters share a shape; their order is assumed to be model order (stable sort) and cannot be checked");
      break;
    }
  return ps;
}

/// The groups a recipe builds, as parameter lists in id order.
std::vector<Params> recipe_param_groups(const std::string& recipe, const std::vector<ModelParam>& model, std::vector<std::string>& warnings) {
  Params all;
  std::set<std::string> seen;
  for (const auto& p : model)
    if (seen.insert(p.name).second) all.push_back(&p);  // named_parameters() drops duplicates
  const Params hidden = select(all, is_hidden_matrix, true), rest = select(all, is_hidden_matrix, false);
  if (recipe == "plain") return {all};
  if (recipe == "nanogpt") return {select(all, [](const ModelParam& p) { return p.shape.size() >= 2; }, true),
                                   select(all, [](const ModelParam& p) { return p.shape.size() >= 2; }, false)};
  if (recipe == "hf-trainer") return {select(all, [](const ModelParam& p) { return is_no_decay(p.name); }, false),
                                      select(all, [](const ModelParam& p) { return is_no_decay(p.name); }, true)};
  if (recipe == "muon") return {hidden};
  if (recipe == "muon-sorted") return {size_sorted(hidden, warnings)};
  if (recipe == "muon-then-adam") return {hidden, rest};
  if (recipe == "muon-first") {
    Params one = hidden;
    one.insert(one.end(), rest.begin(), rest.end());
    return {one};
  }
  if (recipe == "kj-aux") {  // aux group: body gains and biases, then the head, then the embedding
    Params aux;
    for (auto* p : rest)
      if (!is_embedding_or_head(p->name)) aux.push_back(p);
    for (auto* p : rest)
      if (is_head(p->name)) aux.push_back(p);
    for (auto* p : rest)
      if (is_embedding_or_head(p->name) && !is_head(p->name)) aux.push_back(p);
    return {size_sorted(hidden, warnings), aux};
  }
  throw UsageError("unknown name recipe '" + recipe + "' (expected plain, hf-trainer, nanogpt, muon, muon-sorted, muon-then-adam, kj-aux or muon-first)");
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

/// What the state tensors and the model say, indexed for the checks.
struct Evidence {
  std::map<std::string, std::vector<const OptimizerStateTensor*>> state_of_key;  ///< param key -> its state tensors
  std::map<std::string, std::vector<int64_t>> shape_of_name;                     ///< canonical name -> shape
  std::vector<std::vector<std::string>> group_ids;                               ///< ids per optimizer group
};

/// Checks names[i] for ids[i]: each name is a model parameter (when the model is known) whose
/// shape equals every state tensor of that id. Returns the first problem, or "".
std::string check_assignment(const std::vector<std::string>& ids, const std::vector<std::string>& names, const Evidence& ev,
                             bool require_known = true) {
  for (size_t i = 0; i < ids.size() && i < names.size(); ++i) {
    const std::string canon = ParameterNamer::canonical_name(names[i]);
    const auto shape = ev.shape_of_name.find(canon);
    if (require_known && !ev.shape_of_name.empty() && shape == ev.shape_of_name.end())
      return "id " + ids[i] + " -> '" + names[i] + "' is not a parameter of the model";
    const auto st = ev.state_of_key.find(ids[i]);
    if (st == ev.state_of_key.end() || shape == ev.shape_of_name.end()) continue;
    for (const OptimizerStateTensor* t : st->second)
      if (!t->shape.empty() && t->shape != shape->second)
        return "id " + ids[i] + " -> '" + names[i] + "': state '" + t->state_key + "' has shape " + shape_text(t->shape) +
               " but the parameter has shape " + shape_text(shape->second);
  }
  return "";
}

/// One recipe's verdict, group by group.
struct Candidate {
  std::string recipe;
  GroupNames groups;               ///< names per optimizer group (empty when the group count differs)
  std::vector<std::string> why;    ///< per group: "" when it checks
  std::string failure;             ///< whole-recipe failure (group count)
  bool passes() const {
    if (!failure.empty()) return false;
    for (const auto& w : why)
      if (!w.empty()) return false;
    return true;
  }
};

Candidate evaluate(const std::string& recipe, const std::vector<ModelParam>& model, const Evidence& ev, std::vector<std::string>& warnings) {
  Candidate c;
  c.recipe = recipe;
  std::vector<Params> groups = recipe_param_groups(recipe, model, warnings);
  if (ev.group_ids.size() == 1 && groups.size() > 1) {  // groups missing from the file: ids are positions
    Params flat;
    for (const auto& g : groups) flat.insert(flat.end(), g.begin(), g.end());
    groups = {flat};
  }
  if (groups.size() != ev.group_ids.size()) {
    c.failure = "builds " + std::to_string(groups.size()) + " param group(s), the optimizer has " + std::to_string(ev.group_ids.size());
    return c;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<std::string> names;
    for (auto* p : groups[g]) names.push_back(p->name);
    std::string why;
    if (names.size() != ev.group_ids[g].size())
      why = "group " + std::to_string(g) + " would hold " + std::to_string(names.size()) + " parameters, the optimizer's holds " +
            std::to_string(ev.group_ids[g].size());
    else
      why = check_assignment(ev.group_ids[g], names, ev);
    c.groups.push_back(std::move(names));
    c.why.push_back(why);
  }
  return c;
}

void assign_group(NameRecovery& r, const std::vector<std::string>& ids, const std::vector<std::string>& names) {
  for (size_t i = 0; i < ids.size() && i < names.size(); ++i) r.names[ids[i]] = names[i];
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

/// Chooses among recipe candidates: a unique full fit wins; otherwise each group on which every
/// fitting candidate agrees keeps its names.
void choose(const std::vector<Candidate>& cands, const Evidence& ev, NameRecovery& r) {
  std::vector<const Candidate*> full;
  for (const auto& c : cands) {
    if (c.passes()) full.push_back(&c);
    std::string verdict = c.passes() ? "fits" : !c.failure.empty() ? c.failure : "";
    for (size_t g = 0; verdict.empty() && g < c.why.size(); ++g)
      if (!c.why[g].empty()) verdict = c.why[g];
    r.tried.push_back(c.recipe + ": " + verdict);
  }
  for (size_t g = 0; g < ev.group_ids.size(); ++g) {
    std::vector<const Candidate*> fit;  // candidates whose group g checks (all full fits when there are any)
    for (const auto& c : cands)
      if (c.failure.empty() && c.why[g].empty() && (full.empty() || c.passes())) fit.push_back(&c);
    bool agree = !fit.empty();
    for (const Candidate* c : fit) agree &= c->groups[g] == fit.front()->groups[g];
    if (agree) {
      assign_group(r, ev.group_ids[g], fit.front()->groups[g]);
      if (r.source.empty()) r.source = "recipe:" + fit.front()->recipe;
    } else {
      std::vector<std::string> names;
      for (const Candidate* c : fit) names.push_back(c->recipe);
      r.problems.push_back("param group " + std::to_string(g) + " (" + std::to_string(ev.group_ids[g].size()) + " ids): " +
                           (fit.empty() ? std::string("no recipe fits its shapes and size")
                                        : "recipes " + join(names, ", ") + " all fit but name the ids differently"));
    }
  }
}

Evidence gather_evidence(const OptimizerLayout& layout, const std::vector<ModelParam>& model) {
  Evidence ev;
  for (const auto& t : layout.tensors) ev.state_of_key[t.param_key].push_back(&t);
  for (const auto& p : model) ev.shape_of_name.emplace(ParameterNamer::canonical_name(p.name), p.shape);
  for (const auto& g : layout.groups) ev.group_ids.push_back(g.params);
  if (ev.group_ids.empty()) {  // no param_groups: ids are positions 0..n-1
    std::set<int64_t> ids;
    for (const auto& t : layout.tensors)
      if (t.param_id >= 0) ids.insert(t.param_id);
    ev.group_ids.emplace_back();
    for (int64_t i = 0; !ids.empty() && i <= *ids.rbegin(); ++i) ev.group_ids.back().push_back(std::to_string(i));
  }
  return ev;
}

}  // namespace

const std::vector<std::string>& name_recipes() {
  static const std::vector<std::string> r = {"plain", "hf-trainer", "nanogpt", "muon", "muon-sorted", "muon-then-adam", "kj-aux", "muon-first"};
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
  // Parameters given as tensor objects (a pickled optimizer) get ids in group order, as
  // state_dict() would assign them; state keyed by the same objects maps to those ids.
  std::map<const pickle::Value*, std::string> id_of_object;
  int64_t position = 0;
  if (groups->kind == Kind::List) {
    for (const auto& g : groups->items) {
      if (g->kind != Kind::Dict) continue;
      ParamGroupInfo info;
      for (size_t i = 0; i + 1 < g->items.size(); i += 2) {
        const std::string k = key_text(*g->items[i]);
        const ValuePtr& v = g->items[i + 1];
        if (k == "params" && (v->kind == Kind::List || v->kind == Kind::Tuple)) {
          for (const auto& x : v->items) {
            std::string id = key_text(*x);
            if (id.empty()) id_of_object[x.get()] = id = std::to_string(position);
            info.params.push_back(id);
            ++position;
          }
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
    if (t.param_key.size() > 1 && t.param_key[0] == '#') {  // a non-text key at this position of `state`
      const ValuePtr state = sd->get("state");
      const size_t k = std::strtoull(t.param_key.c_str() + 1, nullptr, 10);
      const auto it = state && 2 * k < state->items.size() ? id_of_object.find(state->items[2 * k].get()) : id_of_object.end();
      if (it != id_of_object.end()) t.param_key = it->second;
    }
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
  bool have_param_names = !layout.groups.empty();
  for (const auto& g : layout.groups) have_param_names &= g.param_names.size() == g.params.size() && !g.params.empty();
  const Evidence ev = gather_evidence(layout, model);
  if (have_param_names) {
    r.source = "param_names";
    for (const auto& g : layout.groups) assign_group(r, g.params, g.param_names);
  } else if (layout.fqn_keyed) {
    r.source = "fqn";
    for (const auto& t : layout.tensors) r.names[t.param_key] = t.param_key;
  } else if (!explicit_order.empty()) {
    r.source = "explicit";
    std::vector<std::string> ids;
    for (const auto& g : ev.group_ids) ids.insert(ids.end(), g.begin(), g.end());
    if (explicit_order.size() != ids.size())
      r.problems.push_back("the mapping lists " + std::to_string(explicit_order.size()) + " parameters but the optimizer's groups hold " +
                           std::to_string(ids.size()));
    else if (const std::string why = check_assignment(ids, explicit_order, ev); !why.empty())
      r.problems.push_back(why);
    if (r.problems.empty()) assign_group(r, ids, explicit_order);
    return r;
  } else if (model.empty()) {
    r.problems.push_back("no param_names in the optimizer state, no mapping file or manifest param_order, and no model weights in this checkpoint step");
    return r;
  } else {
    std::vector<Candidate> cands;
    for (const std::string& name : recipe.empty() ? name_recipes() : std::vector<std::string>{recipe}) {
      std::vector<std::string> warnings;
      cands.push_back(evaluate(name, model, ev, warnings));
      if (cands.back().passes()) r.warnings.insert(r.warnings.end(), warnings.begin(), warnings.end());
    }
    choose(cands, ev, r);
    return r;
  }
  // Names that came with the file are still checked against the state shapes.
  for (const auto& [key, name] : r.names)
    if (const std::string why = check_assignment({key}, {name}, ev, false); !why.empty()) r.problems.push_back(why);
  return r;
}

}  // namespace muspec
