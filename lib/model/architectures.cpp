// The naming table: one row per (family, parameter-name pattern). Sources are cited per family;
// docs/naming.md explains how to add a family. Conventions:
//  * patterns are searched in the canonical name and start with (?:^|\.) so that any wrapping
//    prefix (PEFT's base_model.model., a DCP "model." dict key) still matches;
//  * `W` matches ".weight" or ".bias" at the end (biases get the module's op, never transposed);
//  * the first matching row wins, after the hinted family's rows (ParameterNamer).
#include <map>

#include "model/naming.h"

namespace muspec {

namespace {

using Op = OperatorType;
using L = FusedLayout;

#define W R"(\.(?:weight|bias)$)"

const std::vector<NamingRule>& build_table() {
  static const std::vector<NamingRule> table = {
      // --- GPT-NeoX / Pythia (HF GPTNeoXForCausalLM, §6.2). query_key_value rows are
      // interleaved per head: (heads, 3, head_dim). Norm rows need the gpt_neox. prefix so that
      // Llama-style "layers.N.input_layernorm" names are not attributed to NeoX.
      {"gpt_neox", R"((?:^|\.)(?:gpt_neox\.)?layers\.(\d+)\.attention\.query_key_value)" W, Op::QKV, 1, false, L::QkvHeadInterleaved},
      {"gpt_neox", R"((?:^|\.)(?:gpt_neox\.)?layers\.(\d+)\.attention\.dense)" W, Op::O, 1, false, L::None},
      {"gpt_neox", R"((?:^|\.)(?:gpt_neox\.)?layers\.(\d+)\.mlp\.dense_h_to_4h)" W, Op::Up, 1, false, L::None},
      {"gpt_neox", R"((?:^|\.)(?:gpt_neox\.)?layers\.(\d+)\.mlp\.dense_4h_to_h)" W, Op::Down, 1, false, L::None},
      {"gpt_neox", R"((?:^|\.)gpt_neox\.layers\.(\d+)\.(?:input_layernorm|post_attention_layernorm))" W, Op::Norm, 1, false, L::None},
      {"gpt_neox", R"((?:^|\.)(?:gpt_neox\.)?embed_in\.weight$)", Op::Embed, 0, false, L::None},
      {"gpt_neox", R"((?:^|\.)(?:gpt_neox\.)?final_layer_norm)" W, Op::Norm, 0, false, L::None},
      {"gpt_neox", R"((?:^|\.)embed_out\.weight$)", Op::Head, 0, false, L::None},

      // --- Megatron-core (§4.3): linear_qkv rows grouped per KV group. linear_fc1 is gate‖up
      // for SwiGLU models and a plain up projection otherwise; the name cannot tell, so it is
      // "up" (use --op-rule 'linear_fc1\.weight$=gate_up' for SwiGLU: [gate; up] rows).
      {"megatron", R"((?:^|\.)decoder\.layers\.(\d+)\.self_attention\.linear_qkv)" W, Op::QKV, 1, false, L::QkvGrouped},
      {"megatron", R"((?:^|\.)decoder\.layers\.(\d+)\.self_attention\.linear_proj)" W, Op::O, 1, false, L::None},
      {"megatron", R"((?:^|\.)decoder\.layers\.(\d+)\.mlp\.linear_fc1)" W, Op::Up, 1, false, L::None},
      {"megatron", R"((?:^|\.)decoder\.layers\.(\d+)\.mlp\.linear_fc2)" W, Op::Down, 1, false, L::None},
      {"megatron", R"((?:^|\.)decoder\.layers\.(\d+)\..*(?:layernorm|layer_norm)(?:_weight|_bias|\.weight|\.bias)$)", Op::Norm, 1, false, L::None},
      {"megatron", R"((?:^|\.)embedding\.word_embeddings\.weight$)", Op::Embed, 0, false, L::None},
      {"megatron", R"((?:^|\.)decoder\.final_layernorm)" W, Op::Norm, 0, false, L::None},
      {"megatron", R"((?:^|\.)output_layer\.weight$)", Op::Head, 0, false, L::None},

      // --- Original OLMo (allenai/OLMo, hf_olmo; §4.6). att_proj = [q; k; v] rows with sizes
      // (d_model, kv·hd, kv·hd); ff_proj = [up; gate] rows (scripts/convert_olmo_to_hf_new.py:
      // `up, gate = chunk(ff_proj, 2, dim=0)`). transformer.ff_out (no block) is the head.
      {"olmo", R"((?:^|\.)transformer\.blocks\.(\d+)\.att_proj)" W, Op::QKV, 1, false, L::QkvConcatRows},
      {"olmo", R"((?:^|\.)transformer\.blocks\.(\d+)\.attn_out)" W, Op::O, 1, false, L::None},
      {"olmo", R"((?:^|\.)transformer\.blocks\.(\d+)\.ff_proj)" W, Op::GateUp, 1, false, L::UpGateRows},
      {"olmo", R"((?:^|\.)transformer\.blocks\.(\d+)\.ff_out)" W, Op::Down, 1, false, L::None},
      {"olmo", R"((?:^|\.)transformer\.blocks\.(\d+)\.q_proj)" W, Op::Q, 1, false, L::None},
      {"olmo", R"((?:^|\.)transformer\.blocks\.(\d+)\.k_proj)" W, Op::K, 1, false, L::None},
      {"olmo", R"((?:^|\.)transformer\.blocks\.(\d+)\.v_proj)" W, Op::V, 1, false, L::None},
      {"olmo", R"((?:^|\.)transformer\.blocks\.(\d+)\.(?:attn_norm|ff_norm|q_norm|k_norm))" W, Op::Norm, 1, false, L::None},
      {"olmo", R"((?:^|\.)transformer\.ff_out\.weight$)", Op::Head, 0, false, L::None},

      // --- OLMo-core (§4.6; FusedAttention.w_qkv is (3·d, d) viewed as (3, heads, hd)).
      {"olmo-core", R"((?:^|\.)blocks\.(\d+)\.attention\.w_q)" W, Op::Q, 1, false, L::None},
      {"olmo-core", R"((?:^|\.)blocks\.(\d+)\.attention\.w_k)" W, Op::K, 1, false, L::None},
      {"olmo-core", R"((?:^|\.)blocks\.(\d+)\.attention\.w_v)" W, Op::V, 1, false, L::None},
      {"olmo-core", R"((?:^|\.)blocks\.(\d+)\.attention\.w_qkv)" W, Op::QKV, 1, false, L::QkvConcatRows},
      {"olmo-core", R"((?:^|\.)blocks\.(\d+)\.attention\.w_out)" W, Op::O, 1, false, L::None},
      {"olmo-core", R"((?:^|\.)blocks\.(\d+)\.feed_forward\.w1)" W, Op::Gate, 1, false, L::None},
      {"olmo-core", R"((?:^|\.)blocks\.(\d+)\.feed_forward\.w2)" W, Op::Down, 1, false, L::None},
      {"olmo-core", R"((?:^|\.)blocks\.(\d+)\.feed_forward\.w3)" W, Op::Up, 1, false, L::None},
      {"olmo-core", R"((?:^|\.)blocks\.(\d+)\.(?:attention_norm|feed_forward_norm|attention\.q_norm|attention\.k_norm))" W, Op::Norm, 1, false, L::None},
      {"olmo-core", R"((?:^|\.)embeddings\.weight$)", Op::Embed, 0, false, L::None},
      {"olmo-core", R"((?:^|\.)lm_head\.norm)" W, Op::Norm, 0, false, L::None},
      {"olmo-core", R"((?:^|\.)lm_head\.w_out)" W, Op::Head, 0, false, L::None},

      // --- modded-nanogpt, February 2025 (commit 587b45fb; §4.5): 3-D qkv_w (3, hdim, dim),
      // CastedLinear = nn.Linear (out, in). value_embeds.N are embeddings, not blocks. The 2024
      // variant's separate c_q/c_k/c_v (nn.Linear) live here too. HEAD's parameter banks
      // (qk_bank, vo_bank, mlp_bank) are not in the table: they fall through to "other".
      {"modded-nanogpt", R"((?:^|\.)blocks\.(\d+)\.attn\.qkv_w$)", Op::QKV, 1, false, L::QkvStacked3D},
      {"modded-nanogpt", R"((?:^|\.)blocks\.(\d+)\.attn\.c_proj)" W, Op::O, 1, false, L::None},
      {"modded-nanogpt", R"((?:^|\.)blocks\.(\d+)\.mlp\.c_fc)" W, Op::Up, 1, false, L::None},
      {"modded-nanogpt", R"((?:^|\.)blocks\.(\d+)\.mlp\.c_proj)" W, Op::Down, 1, false, L::None},
      {"modded-nanogpt", R"((?:^|\.)blocks\.(\d+)\.(?:attn\.)?lambdas$)", Op::Other, 1, false, L::None},
      {"modded-nanogpt", R"((?:^|\.)h\.(\d+)\.attn\.c_q)" W, Op::Q, 1, false, L::None},
      {"modded-nanogpt", R"((?:^|\.)h\.(\d+)\.attn\.c_k)" W, Op::K, 1, false, L::None},
      {"modded-nanogpt", R"((?:^|\.)h\.(\d+)\.attn\.c_v)" W, Op::V, 1, false, L::None},
      {"modded-nanogpt", R"(^embed\.weight$)", Op::Embed, 0, false, L::None},
      {"modded-nanogpt", R"((?:^|\.)value_embeds?\.\d+\.weight$)", Op::Embed, 0, false, L::None},
      {"modded-nanogpt", R"(^(?:skip_weights|scalars)$)", Op::Other, 0, false, L::None},

      // --- Phi-3 (transformers modeling_phi3.py): Llama names plus fused qkv_proj = [q; k; v]
      // rows and gate_up_proj = [gate; up] rows (`gate, up = chunk(2, dim=-1)`).
      {"phi3", R"((?:^|\.)layers\.(\d+)\.self_attn\.qkv_proj)" W, Op::QKV, 1, false, L::QkvConcatRows},
      {"phi3", R"((?:^|\.)layers\.(\d+)\.mlp\.gate_up_proj)" W, Op::GateUp, 1, false, L::GateUpRows},

      // --- Meta Llama reference code and torchtitan (llama3 model.py): tok_embeddings,
      // layers.N.attention.w{q,k,v,o}, feed_forward.w1 (gate) / w2 (down) / w3 (up),
      // attention_norm, ffn_norm, norm, output. No config.json: params.json holds n_layers.
      {"meta-llama", R"((?:^|\.)layers\.(\d+)\.attention\.wq)" W, Op::Q, 1, false, L::None},
      {"meta-llama", R"((?:^|\.)layers\.(\d+)\.attention\.wk)" W, Op::K, 1, false, L::None},
      {"meta-llama", R"((?:^|\.)layers\.(\d+)\.attention\.wv)" W, Op::V, 1, false, L::None},
      {"meta-llama", R"((?:^|\.)layers\.(\d+)\.attention\.wo)" W, Op::O, 1, false, L::None},
      {"meta-llama", R"((?:^|\.)layers\.(\d+)\.feed_forward\.w1)" W, Op::Gate, 1, false, L::None},
      {"meta-llama", R"((?:^|\.)layers\.(\d+)\.feed_forward\.w2)" W, Op::Down, 1, false, L::None},
      {"meta-llama", R"((?:^|\.)layers\.(\d+)\.feed_forward\.w3)" W, Op::Up, 1, false, L::None},
      {"meta-llama", R"((?:^|\.)layers\.(\d+)\.(?:attention_norm|ffn_norm))" W, Op::Norm, 1, false, L::None},
      {"meta-llama", R"((?:^|\.)tok_embeddings\.weight$)", Op::Embed, 0, false, L::None},
      {"meta-llama", R"(^output\.weight$)", Op::Head, 0, false, L::None},

      // --- Llama / Mistral / Qwen2 / Qwen3 / HF OLMo / OLMo-2 (§6.2). With or without the
      // model. prefix (AutoModel saves omit it). Norms: input/post_attention/pre_/post_
      // feedforward layernorms and Qwen3/OLMo-2 self_attn.q_norm/k_norm.
      {"llama", R"((?:^|\.)layers\.(\d+)\.self_attn\.q_proj)" W, Op::Q, 1, false, L::None},
      {"llama", R"((?:^|\.)layers\.(\d+)\.self_attn\.k_proj)" W, Op::K, 1, false, L::None},
      {"llama", R"((?:^|\.)layers\.(\d+)\.self_attn\.v_proj)" W, Op::V, 1, false, L::None},
      {"llama", R"((?:^|\.)layers\.(\d+)\.self_attn\.o_proj)" W, Op::O, 1, false, L::None},
      {"llama", R"((?:^|\.)layers\.(\d+)\.mlp\.gate_proj)" W, Op::Gate, 1, false, L::None},
      {"llama", R"((?:^|\.)layers\.(\d+)\.mlp\.up_proj)" W, Op::Up, 1, false, L::None},
      {"llama", R"((?:^|\.)layers\.(\d+)\.mlp\.down_proj)" W, Op::Down, 1, false, L::None},
      {"llama", R"((?:^|\.)layers\.(\d+)\.(?:self_attn\.)?[a-z_]*norm)" W, Op::Norm, 1, false, L::None},
      {"llama", R"((?:^|\.)embed_tokens\.weight$)", Op::Embed, 0, false, L::None},
      {"llama", R"((?:(?:^|\.)model\.|^)norm\.weight$)", Op::Norm, 0, false, L::None},
      {"llama", R"((?:^|\.)lm_head\.weight$)", Op::Head, 0, false, L::None},

      // --- Mixture of experts, Hugging Face names. Per-expert modules: Mixtral / PhiMoE
      // block_sparse_moe.experts.E.w1 (gate) / w2 (down) / w3 (up); Qwen2-MoE, DeepSeek-V2/V3
      // mlp.experts.E.{gate,up,down}_proj and shared_expert(s). Expert banks (one 3-D [E, out, in]
      // parameter: mlp.experts.gate_proj, Llama-4 feed_forward.experts.gate_up_proj, torchtitan
      // moe.experts.w1) are sliced per expert. Routers (mlp.gate, block_sparse_moe.gate,
      // moe.router.gate, shared_expert_gate) are not Muon matrices.
      {"moe", R"((?:^|\.)layers\.(\d+)\.(?:block_sparse_moe|mlp|feed_forward|moe)\.(?:experts\.\d+\.|shared_experts?\.|experts\.)(?:w1|gate_proj)(?:\.weight|\.bias)?$)", Op::Gate, 1, false, L::None},
      {"moe", R"((?:^|\.)layers\.(\d+)\.(?:block_sparse_moe|mlp|feed_forward|moe)\.(?:experts\.\d+\.|shared_experts?\.|experts\.)(?:w3|up_proj)(?:\.weight|\.bias)?$)", Op::Up, 1, false, L::None},
      {"moe", R"((?:^|\.)layers\.(\d+)\.(?:block_sparse_moe|mlp|feed_forward|moe)\.(?:experts\.\d+\.|shared_experts?\.|experts\.)(?:w2|down_proj)(?:\.weight|\.bias)?$)", Op::Down, 1, false, L::None},
      {"moe", R"((?:^|\.)layers\.(\d+)\.(?:block_sparse_moe|mlp|feed_forward|moe)\.(?:experts\.\d+\.|shared_experts?\.|experts\.)gate_up_proj(?:\.weight|\.bias)?$)", Op::GateUp, 1, false, L::None},
      {"moe", R"((?:^|\.)layers\.(\d+)\.(?:block_sparse_moe|mlp|feed_forward|moe)\.(?:gate|router|router\.gate|shared_expert_gate)(?:\.weight|\.bias|\.e_score_correction_bias)?$)", Op::Router, 1, false, L::None},

      // --- DeepSeek-V2/V3 multi-head latent attention (modeling_deepseek_v3.py): low-rank q
      // (q_a_proj -> q_a_layernorm -> q_b_proj) and kv (kv_a_proj_with_mqa -> kv_a_layernorm ->
      // kv_b_proj); o_proj and the norms match the Llama rows below.
      {"deepseek-mla", R"((?:^|\.)layers\.(\d+)\.self_attn\.q_a_proj)" W, Op::QA, 1, false, L::None},
      {"deepseek-mla", R"((?:^|\.)layers\.(\d+)\.self_attn\.q_b_proj)" W, Op::QB, 1, false, L::None},
      {"deepseek-mla", R"((?:^|\.)layers\.(\d+)\.self_attn\.kv_a_proj_with_mqa)" W, Op::KVA, 1, false, L::None},
      {"deepseek-mla", R"((?:^|\.)layers\.(\d+)\.self_attn\.kv_b_proj)" W, Op::KVB, 1, false, L::None},

      // --- Hugging Face GPT-2 (§6.2): Conv1D weights stored (in, out); c_attn = [q | k | v]
      // along the output (last) dimension. With or without the transformer. prefix. attn.bias
      // and attn.masked_bias are causal-mask buffers in old checkpoints.
      {"gpt2", R"((?:^|\.)h\.(\d+)\.attn\.c_attn)" W, Op::QKV, 1, true, L::QkvConcatCols},
      {"gpt2", R"((?:^|\.)h\.(\d+)\.attn\.c_proj)" W, Op::O, 1, true, L::None},
      {"gpt2", R"((?:^|\.)h\.(\d+)\.mlp\.c_fc)" W, Op::Up, 1, true, L::None},
      {"gpt2", R"((?:^|\.)h\.(\d+)\.mlp\.c_proj)" W, Op::Down, 1, true, L::None},
      {"gpt2", R"((?:^|\.)h\.(\d+)\.ln_[12])" W, Op::Norm, 1, false, L::None},
      {"gpt2", R"((?:^|\.)h\.(\d+)\.attn\.(?:masked_)?bias$)", Op::Other, 1, false, L::None},
      {"gpt2", R"((?:^|\.)wte\.weight$)", Op::Embed, 0, false, L::None},
      {"gpt2", R"((?:^|\.)wpe\.weight$)", Op::Embed, 0, false, L::None},
      {"gpt2", R"((?:^|\.)ln_f)" W, Op::Norm, 0, false, L::None},
      {"gpt2", R"((?:^|\.)lm_head\.weight$)", Op::Head, 0, false, L::None},

      // --- nanoGPT (karpathy/nanoGPT model.py; §4.4): GPT-2 names, but nn.Linear (out, in), so
      // c_attn is [q; k; v] along dim 0 and nothing is transposed. Reached before the gpt2 rows
      // only with the "nanogpt" hint (explicit, or implied by an _orig_mod. prefix).
      {"nanogpt", R"((?:^|\.)transformer\.h\.(\d+)\.attn\.c_attn)" W, Op::QKV, 1, false, L::QkvConcatRows},
      {"nanogpt", R"((?:^|\.)transformer\.h\.(\d+)\.attn\.c_proj)" W, Op::O, 1, false, L::None},
      {"nanogpt", R"((?:^|\.)transformer\.h\.(\d+)\.mlp\.c_fc)" W, Op::Up, 1, false, L::None},
      {"nanogpt", R"((?:^|\.)transformer\.h\.(\d+)\.mlp\.c_proj)" W, Op::Down, 1, false, L::None},
      {"nanogpt", R"((?:^|\.)transformer\.h\.(\d+)\.ln_[12])" W, Op::Norm, 1, false, L::None},
      {"nanogpt", R"((?:^|\.)transformer\.wte\.weight$)", Op::Embed, 0, false, L::None},
      {"nanogpt", R"((?:^|\.)transformer\.wpe\.weight$)", Op::Embed, 0, false, L::None},
      {"nanogpt", R"((?:^|\.)transformer\.ln_f)" W, Op::Norm, 0, false, L::None},
      {"nanogpt", R"((?:^|\.)lm_head\.weight$)", Op::Head, 0, false, L::None},

      // --- Names shared by several families, attributed here only when that family is hinted
      // (the rows above already matched them otherwise, with the same op and block index).
      {"olmo", R"((?:^|\.)transformer\.wte\.weight$)", Op::Embed, 0, false, L::None},
      {"olmo", R"((?:^|\.)transformer\.ln_f)" W, Op::Norm, 0, false, L::None},
      {"modded-nanogpt", R"((?:^|\.)lm_head\.weight$)", Op::Head, 0, false, L::None},
  };
  return table;
}

#undef W

}  // namespace

const std::vector<NamingRule>& naming_table() { return build_table(); }

std::string family_for_model_type(const std::string& model_type) {
  static const std::map<std::string, std::string> aliases = {
      {"llama", "llama"}, {"mistral", "llama"}, {"mixtral", "llama"}, {"qwen2", "llama"},
      {"qwen3", "llama"}, {"olmo", "llama"},    {"olmo2", "llama"},   {"gemma", "llama"},
      {"gemma2", "llama"}, {"phi3", "phi3"},    {"gpt2", "gpt2"},     {"gpt_neox", "gpt_neox"},
      {"hf_olmo", "olmo"}, {"gemma3_text", "llama"}, {"qwen2_moe", "llama"}, {"qwen3_moe", "llama"},
      {"deepseek_v2", "llama"}, {"deepseek_v3", "llama"}, {"phimoe", "llama"}, {"granitemoe", "llama"},
  };
  auto it = aliases.find(model_type);
  return it == aliases.end() ? std::string() : it->second;
}

std::string resolve_family_hint(const std::string& hint) {
  for (const NamingRule& r : naming_table())
    if (hint == r.family) return hint;
  if (hint == "pythia") return "gpt_neox";
  return family_for_model_type(hint);
}

}  // namespace muspec
