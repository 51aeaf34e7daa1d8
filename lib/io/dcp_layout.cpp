#include "io/dcp_layout.h"

#include <cctype>

namespace muspec {

namespace {

/// More slices than this along a stacked layer axis is not a model (a hostile shape).
constexpr int64_t kMaxStackedLayers = int64_t{1} << 16;

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

std::string join(const std::vector<std::string>& parts, size_t from) {
  std::string s;
  for (size_t i = from; i < parts.size(); ++i) s += (i > from ? "." : "") + parts[i];
  return s;
}

/// A parameter and one of its optimizer states, or a weight (state empty).
struct KeyMeaning {
  std::string fqn, state;
  bool optimizer_other = false;  ///< an optimizer tensor that is not per-parameter state
};

/// "<fqn>.<state>" (torch's flattened optimizer state): the state is the last component.
KeyMeaning split_fqn_state(const std::string& rest) {
  const auto dot = rest.rfind('.');
  if (dot == std::string::npos || dot == 0) return {rest, "", true};
  return {rest.substr(0, dot), rest.substr(dot + 1)};
}

KeyMeaning torch_meaning(const DcpTensor& t, const std::string& directory) {
  const auto& p = t.path;
  if (!p.empty() && p[0] == "optimizer") {
    if (p.size() == 4 && p[1] == "state") return {p[2], p[3]};  // nested: accelerate, torch < 2.4 traversal
    const std::string rest = join(p, 1);
    if (starts_with(rest, "state.")) return split_fqn_state(rest.substr(6));  // flattened optimizer state dict
    return {rest, "", true};
  }
  if (p.size() >= 2 && p[0] == "model") return {join(p, 1), ""};  // accelerate: {"model": state_dict}
  if (p.size() == 1 && starts_with(directory, "pytorch_model_fsdp") && starts_with(t.key, "model."))
    return {t.key.substr(6), ""};  // accelerate without planner_data
  return {t.key, ""};  // torchtitan: model parameters at the top level
}

/// Megatron: "optimizer.state.<state>.<key>" (fully reshardable), weights under their key.
KeyMeaning megatron_meaning(const DcpTensor& t) {
  static const std::string head = "optimizer.state.";
  if (!starts_with(t.key, head)) return {t.key, "", starts_with(t.key, "optimizer.")};
  const std::string rest = t.key.substr(head.size());
  const auto dot = rest.find('.');
  if (dot == std::string::npos) return {rest, "", true};
  return {rest.substr(dot + 1), rest.substr(0, dot)};
}

/// Where a stacked key lacks its layer index: after a "layers." not followed by a digit
/// ("decoder.layers.self_attention..."), or npos.
size_t stacked_layer_position(const std::string& fqn) {
  for (size_t at = fqn.find("layers."); at != std::string::npos; at = fqn.find("layers.", at + 1)) {
    const bool segment_start = at == 0 || fqn[at - 1] == '.';
    const size_t next = at + 7;
    if (segment_start && next < fqn.size() && !std::isdigit(static_cast<unsigned char>(fqn[next]))) return next;
  }
  return std::string::npos;
}

std::string entry_name(const KeyMeaning& m, const std::string& fqn) {
  return m.state.empty() ? fqn : "optimizer.state." + fqn + "." + m.state;
}

std::string state_problem(const KeyMeaning& m) {
  if (m.state.empty() || is_analysed_state_key(m.state)) return "";
  if (m.state == "fp32_param") return "Megatron's fp32 master copy of the weight, not analysed (the weight itself is)";
  return "optimizer state '" + m.state + "' is not one muspec analyses (momentum_buffer, exp_avg, exp_avg_sq)";
}

void add_entries(const DcpMetadata& md, size_t i, const KeyMeaning& m, bool megatron, DcpLayout& out) {
  const DcpTensor& t = md.tensors[i];
  const std::string unsupported = m.optimizer_other ? "optimizer tensor that is not per-parameter state" : state_problem(m);
  const size_t at = megatron ? stacked_layer_position(m.fqn) : std::string::npos;
  if (at == std::string::npos || t.shape.size() < 2) {
    out.entries.push_back({m.optimizer_other ? t.key : entry_name(m, m.fqn), i, -1, unsupported});
    return;
  }
  if (t.shape[0] > kMaxStackedLayers) {
    out.unreadable.push_back({t.key, "a stack of " + std::to_string(t.shape[0]) + " layers is implausible"});
    return;
  }
  for (int64_t l = 0; l < t.shape[0]; ++l) {
    const std::string fqn = m.fqn.substr(0, at) + std::to_string(l) + "." + m.fqn.substr(at);
    out.entries.push_back({entry_name(m, fqn), i, l, unsupported});
  }
}

}  // namespace

bool is_analysed_state_key(const std::string& key) {
  return key == "momentum_buffer" || key == "exp_avg" || key == "exp_avg_sq" || key == "moment1" || key == "moment2";
}

DcpLayout plan_dcp_layout(const DcpMetadata& md, bool megatron, const std::string& directory) {
  DcpLayout out;
  out.trainer = megatron ? "Megatron torch_dist" : starts_with(directory, "pytorch_model_fsdp") || starts_with(directory, "optimizer_")
                                                       ? "accelerate FSDP"
                                                       : "DCP";
  std::vector<std::string> flat_buckets;
  for (size_t i = 0; i < md.tensors.size(); ++i) {
    const DcpTensor& t = md.tensors[i];
    if (megatron && starts_with(t.key, "optimizer.distributed.")) flat_buckets.push_back(t.key);
    else add_entries(md, i, megatron ? megatron_meaning(t) : torch_meaning(t, directory), megatron, out);
  }
  if (!flat_buckets.empty())  // one report for the whole optimizer state, naming the first bucket
    out.unreadable.push_back({flat_buckets.front(),
                              "Megatron's dp_reshardable distributed-optimizer format (flat buckets: " + std::to_string(flat_buckets.size()) +
                                  "): the map from bucket ranges to parameters is not saved, so the optimizer state "
                                  "cannot be reassembled into matrices; re-save the checkpoint with "
                                  "--dist-ckpt-optim-fully-reshardable (keys optimizer.state.<kind>.<parameter>)"});
  return out;
}

}  // namespace muspec
