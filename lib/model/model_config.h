// Model shape from a Hugging Face config.json or a nanoGPT `model_args` dict
// (checkpoint-formats.md §6.1). Every size is optional in the file: 0 means "not stated".
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace muspec {

/// The sizes muspec needs to name, split and place matrices.
///
/// Field aliases, first present wins (two present with different values is an error):
///  - layers: num_hidden_layers, n_layer, num_layers, n_layers
///  - hidden: hidden_size, n_embd, d_model
///  - heads: num_attention_heads, n_head, n_heads
///  - kv heads: num_key_value_heads, n_kv_heads; multi_query_attention=true means 1; default = heads
///  - head_dim: head_dim, else hidden / heads
///  - intermediate (per part: the width of gate and of up): intermediate_size, n_inner,
///    ffn_dim; GPT-2 `n_inner: null` and nanoGPT mean 4·hidden; original OLMo (hf_olmo)
///    mlp_hidden_size (or mlp_ratio·d_model) is the fused gate‖up width, halved for SwiGLU
///  - vocab: embedding_size (OLMo's padded rows) before vocab_size, n_vocab
///  - tie_word_embeddings, weight_tying; default per model_type (docs/naming.md)
struct ModelConfig {
  std::string source;      ///< file the values came from ("<json>" for in-memory dicts)
  std::string model_type;  ///< as written; "" when absent (nanoGPT model_args)
  std::string family;      ///< naming-table family (family_for_model_type); "nanogpt" for model_args
  int num_layers = 0;
  int64_t hidden_size = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  bool tie_word_embeddings = false;
};

/// Reads and parses a config.json. Throws InputError(json_path, "", reason) when the file
/// cannot be read, is not JSON, is not an object, or holds a malformed or inconsistent field
/// (wrong type, not a positive integer, implausibly large, heads not divisible by KV heads,
/// conflicting aliases).
ModelConfig parse_model_config(const std::string& json_path);

/// The same from an already parsed dict; `source` names it in error messages.
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& source = "<json>");

/// nlohmann ADL hook: `j.get<muspec::ModelConfig>()`.
void from_json(const nlohmann::json& j, ModelConfig& config);

}  // namespace muspec
