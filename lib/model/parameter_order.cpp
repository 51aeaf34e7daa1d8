#include "model/parameter_order.h"

#include <algorithm>
#include <regex>
#include <tuple>

#include "model/naming.h"

namespace muspec {

namespace {

/// One place in a module's registration order. Expert modules share `slot` and are ordered by
/// expert index, then by `sub` (their own registration order).
struct Slot {
  const char* pattern;  ///< full match on the name without .weight/.bias (pre/post: its tail)
  int slot;
  int sub;
};

/// Registration order per family: embeddings (pre), each block, final norm and head (post).
/// Sources: transformers' modeling_llama / qwen2 / qwen2_moe / mixtral / deepseek_v3 / gemma2
/// / phi3 / gpt2 / gpt_neox __init__ methods, karpathy/nanoGPT model.py, Meta's llama3 and
/// torchtitan model.py. A family's list must place every name of a model for it to be used.
struct FamilyOrder {
  const char* family;
  std::vector<Slot> pre, block, post;
};

const std::vector<FamilyOrder>& family_orders() {
  static const std::vector<FamilyOrder> orders = {
      {"llama",
       {{"embed_tokens", 0, 0}},
       {{"self_attn\\.q_proj", 0, 0},        {"self_attn\\.q_a_proj", 1, 0},      {"self_attn\\.q_a_layernorm", 2, 0},
        {"self_attn\\.q_b_proj", 3, 0},      {"self_attn\\.kv_a_proj_with_mqa", 4, 0},
        {"self_attn\\.kv_a_layernorm", 5, 0}, {"self_attn\\.kv_b_proj", 6, 0},    {"self_attn\\.k_proj", 7, 0},
        {"self_attn\\.v_proj", 8, 0},        {"self_attn\\.o_proj", 9, 0},        {"self_attn\\.q_norm", 10, 0},
        {"self_attn\\.k_norm", 11, 0},       {"mlp\\.gate_proj", 12, 0},          {"mlp\\.up_proj", 13, 0},
        {"mlp\\.down_proj", 14, 0},          {"(?:mlp|block_sparse_moe)\\.gate", 15, 0},
        // per-expert modules, each registered gate, up, down (Qwen2-MoE) or w1, w2, w3 (Mixtral)
        {"(?:mlp|block_sparse_moe)\\.experts\\.#\\.(?:gate_proj|w1)", 16, 0},
        {"(?:mlp|block_sparse_moe)\\.experts\\.#\\.(?:up_proj|w2)", 16, 1},
        {"(?:mlp|block_sparse_moe)\\.experts\\.#\\.(?:down_proj|w3)", 16, 2},
        {"(?:mlp|feed_forward)\\.experts\\.(?:gate_proj|gate_up_proj)", 17, 0},
        {"(?:mlp|feed_forward)\\.experts\\.up_proj", 17, 1},  {"(?:mlp|feed_forward)\\.experts\\.down_proj", 17, 2},
        {"mlp\\.shared_experts?\\.gate_proj", 18, 0},         {"mlp\\.shared_experts?\\.up_proj", 18, 1},
        {"mlp\\.shared_experts?\\.down_proj", 18, 2},         {"mlp\\.shared_expert_gate", 19, 0},
        {"input_layernorm", 20, 0},          {"post_attention_layernorm", 21, 0}, {"pre_feedforward_layernorm", 22, 0},
        {"post_feedforward_layernorm", 23, 0}},
       {{"norm", 0, 0}, {"lm_head", 1, 0}}},
      {"phi3",
       {{"embed_tokens", 0, 0}},
       {{"self_attn\\.o_proj", 0, 0}, {"self_attn\\.qkv_proj", 1, 0}, {"mlp\\.gate_up_proj", 2, 0},
        {"mlp\\.down_proj", 3, 0}, {"input_layernorm", 4, 0}, {"post_attention_layernorm", 5, 0}},
       {{"norm", 0, 0}, {"lm_head", 1, 0}}},
      {"gpt2",  // Hugging Face GPT-2 and nanoGPT share module names and order
       {{"wte", 0, 0}, {"wpe", 1, 0}},
       {{"ln_1", 0, 0}, {"attn\\.c_attn", 1, 0}, {"attn\\.c_proj", 2, 0}, {"ln_2", 3, 0}, {"mlp\\.c_fc", 4, 0},
        {"mlp\\.c_proj", 5, 0}},
       {{"ln_f", 0, 0}, {"lm_head", 1, 0}}},
      {"gpt_neox",
       {{"embed_in", 0, 0}},
       {{"input_layernorm", 0, 0}, {"post_attention_layernorm", 1, 0}, {"attention\\.query_key_value", 2, 0},
        {"attention\\.dense", 3, 0}, {"mlp\\.dense_h_to_4h", 4, 0}, {"mlp\\.dense_4h_to_h", 5, 0}},
       {{"final_layer_norm", 0, 0}, {"embed_out", 1, 0}}},
      {"meta-llama",
       {{"tok_embeddings", 0, 0}},
       {{"attention\\.wq", 0, 0}, {"attention\\.wk", 1, 0}, {"attention\\.wv", 2, 0}, {"attention\\.wo", 3, 0},
        {"feed_forward\\.w1", 4, 0}, {"feed_forward\\.w2", 5, 0}, {"feed_forward\\.w3", 6, 0},
        {"moe\\.router\\.gate", 7, 0}, {"moe\\.experts\\.w1", 8, 0}, {"moe\\.experts\\.w2", 8, 1},
        {"moe\\.experts\\.w3", 8, 2}, {"moe\\.shared_experts?\\.w1", 9, 0}, {"moe\\.shared_experts?\\.w2", 9, 1},
        {"moe\\.shared_experts?\\.w3", 9, 2}, {"attention_norm", 10, 0}, {"ffn_norm", 11, 0}},
       {{"norm", 0, 0}, {"output", 1, 0}}},
  };
  return orders;
}

struct CompiledSlot {
  std::regex re;
  int slot, sub;
};

struct CompiledOrder {
  std::string family;
  std::vector<CompiledSlot> pre, block, post;
};

std::vector<CompiledSlot> compile(const std::vector<Slot>& slots, bool tail) {
  std::vector<CompiledSlot> out;
  for (const Slot& s : slots) {
    std::string p = s.pattern;
    for (size_t at; (at = p.find('#')) != std::string::npos;) p.replace(at, 1, "(\\d+)");  // expert index
    out.push_back({std::regex(tail ? "(?:^|.*\\.)" + p : p, std::regex::ECMAScript | std::regex::optimize), s.slot, s.sub});
  }
  return out;
}

const std::vector<CompiledOrder>& compiled_orders() {
  static const std::vector<CompiledOrder> c = [] {
    std::vector<CompiledOrder> out;
    for (const FamilyOrder& f : family_orders())
      out.push_back({f.family, compile(f.pre, true), compile(f.block, false), compile(f.post, true)});
    return out;
  }();
  return c;
}

/// (section, layer, slot, expert, sub, bias): section 0 = before the blocks, 1 = a block, 2 = after.
using OrderKey = std::tuple<int, int64_t, int, int64_t, int, int>;

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

/// Splits "model.layers.3.mlp.up_proj" at its first all-digit component: layer 3, rest
/// "mlp.up_proj". Returns -1 when the name has no block index.
int64_t split_at_block(const std::string& base, std::string* rest) {
  size_t pos = 0;
  while (pos < base.size()) {
    const size_t dot = base.find('.', pos);
    if (dot == std::string::npos) return -1;
    const std::string comp = base.substr(pos, dot - pos);
    if (!comp.empty() && comp.size() <= 9 && comp.find_first_not_of("0123456789") == std::string::npos) {
      *rest = base.substr(dot + 1);
      return std::stoll(comp);
    }
    pos = dot + 1;
  }
  return -1;
}

std::optional<OrderKey> key_of(const CompiledOrder& f, const std::string& name) {
  std::string base = name;
  int bias = 0;
  if (ends_with(base, ".weight")) base.resize(base.size() - 7);
  else if (ends_with(base, ".bias")) base.resize(base.size() - 5), bias = 1;
  if (base.size() > kMaxMatchedNameLength) return std::nullopt;
  std::smatch m;
  std::string rest;
  if (const int64_t layer = split_at_block(base, &rest); layer >= 0) {
    for (const CompiledSlot& s : f.block)
      if (std::regex_match(rest, m, s.re)) {
        const int64_t expert = m.size() > 1 && m[1].matched && m[1].length() <= 9 ? std::stoll(m[1].str()) : -1;
        return OrderKey{1, layer, s.slot, expert, s.sub, bias};
      }
    return std::nullopt;
  }
  for (int section : {0, 2})
    for (const CompiledSlot& s : section == 0 ? f.pre : f.post)
      if (std::regex_match(base, s.re)) return OrderKey{section, -1, s.slot, -1, s.sub, bias};
  return std::nullopt;
}

}  // namespace

std::optional<std::vector<ModelParam>> registration_order(const std::vector<ModelParam>& weights, std::string* why) {
  size_t best_placed = 0;
  std::string best_unplaced;
  for (const CompiledOrder& f : compiled_orders()) {
    std::vector<std::pair<OrderKey, size_t>> keyed;
    for (size_t i = 0; i < weights.size(); ++i) {
      const auto k = key_of(f, weights[i].name);
      if (!k) {
        if (keyed.size() >= best_placed) best_placed = keyed.size(), best_unplaced = weights[i].name;
        break;
      }
      keyed.emplace_back(*k, i);
    }
    if (keyed.size() != weights.size() || weights.empty()) continue;
    std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<ModelParam> out;
    for (const auto& [k, i] : keyed) out.push_back(weights[i]);
    return out;
  }
  if (why)
    *why = weights.empty() ? "no model weights in this checkpoint step"
                           : "the module registration order of '" + best_unplaced + "' is not known";
  return std::nullopt;
}

bool is_known_buffer(const std::string& name, const std::vector<int64_t>& shape) {
  for (const char* tail : {".inv_freq", ".masked_bias", ".position_ids", ".running_mean", ".running_var",
                           ".num_batches_tracked", ".freqs_cis", "._float_tensor"})
    if (ends_with(name, tail)) return true;
  // GPT-2 / nanoGPT causal mask: attn.bias of shape (1, 1, T, T); a Linear bias is 1-D.
  return ends_with(name, ".attn.bias") && shape.size() == 4;
}

}  // namespace muspec
