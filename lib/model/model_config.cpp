#include "model/model_config.h"

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_limits.h"
#include "model/naming.h"

namespace muspec {

namespace {

using nlohmann::json;

// Plausibility caps: far above any real model, low enough that products of a few of them
// (rows = (heads + 2·kv)·head_dim) cannot overflow int64.
constexpr int64_t kMaxLayers = 1'000'000;
constexpr int64_t kMaxHeads = int64_t{1} << 20;
constexpr int64_t kMaxSize = int64_t{1} << 40;

class Reader {
 public:
  Reader(const json& j, const std::string& source) : j_(j), source_(source) {}

  [[noreturn]] void fail(const std::string& reason) const { throw InputError(source_, "", reason); }

  // The value of the first present, non-null alias; 0 when none. Every present alias must be a
  // positive integer (an integral float such as 4096.0 is accepted) no larger than `cap`, and
  // all present aliases must agree.
  int64_t positive(std::initializer_list<const char*> keys, int64_t cap) const {
    int64_t value = 0;
    const char* first = nullptr;
    for (const char* key : keys) {
      auto it = j_.find(key);
      if (it == j_.end() || it->is_null()) continue;
      const int64_t v = to_int(key, *it, cap);
      if (!first) {
        first = key;
        value = v;
      } else if (v != value) {
        fail("conflicting sizes: '" + std::string(first) + "' is " + std::to_string(value) +
             " but '" + key + "' is " + std::to_string(v));
      }
    }
    return value;
  }

  // nullopt when absent or null.
  std::optional<bool> boolean(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return std::nullopt;
    if (!it->is_boolean()) fail("field '" + std::string(key) + "' must be true or false, got " + it->dump());
    return it->get<bool>();
  }

  std::string string(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return "";
    if (!it->is_string()) fail("field '" + std::string(key) + "' must be a string, got " + it->dump());
    return it->get<std::string>();
  }

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

 private:
  int64_t to_int(const char* key, const json& v, int64_t cap) const {
    int64_t out = 0;
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(cap)) bad(key, v, cap);
      out = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      out = v.get<int64_t>();
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > static_cast<double>(cap)) bad(key, v, cap);
      out = static_cast<int64_t>(d);
    } else {
      bad(key, v, cap);
    }
    if (out <= 0 || out > cap) bad(key, v, cap);
    return out;
  }

  [[noreturn]] void bad(const char* key, const json& v, int64_t cap) const {
    fail("field '" + std::string(key) + "' must be a positive integer no larger than " +
         std::to_string(cap) + ", got " + v.dump());
  }

  const json& j_;
  const std::string& source_;
};

// Hugging Face defaults for tie_word_embeddings when a config omits it: PretrainedConfig says
// true; LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config, OlmoConfig, Olmo2Config,
// Phi3Config and GPTNeoXConfig override it to false. nanoGPT always ties; original OLMo's
// weight_tying defaults to true (its HF conversion script reads it with default True).
bool default_tie(const std::string& model_type, const std::string& family) {
  if (family == "nanogpt" || model_type == "gpt2" || model_type == "hf_olmo") return true;
  for (const char* untied : {"llama", "mistral", "mixtral", "qwen2", "qwen3", "olmo", "olmo2",
                             "phi3", "gpt_neox"})
    if (model_type == untied) return false;
  return true;
}

}  // namespace

ModelConfig model_config_from_json(const json& j, const std::string& source) {
  ModelConfig c;
  c.source = source;
  Reader r(j, c.source);
  if (!j.is_object()) r.fail("a model config must be a JSON object, got " + std::string(j.type_name()));

  c.model_type = r.string("model_type");
  c.family = family_for_model_type(c.model_type);
  // nanoGPT's model_args dict has no model_type but always block_size and n_layer.
  const bool nanogpt = c.model_type.empty() && r.has("block_size") && r.has("n_layer");
  if (nanogpt) c.family = "nanogpt";

  c.num_layers = static_cast<int>(r.positive({"num_hidden_layers", "n_layer", "num_layers", "n_layers"}, kMaxLayers));
  c.hidden_size = r.positive({"hidden_size", "n_embd", "d_model"}, kMaxSize);
  c.num_heads = r.positive({"num_attention_heads", "n_head", "n_heads"}, kMaxHeads);
  c.num_kv_heads = r.positive({"num_key_value_heads", "n_kv_heads"}, kMaxHeads);
  if (c.num_kv_heads == 0 && r.boolean("multi_query_attention").value_or(false)) c.num_kv_heads = 1;
  if (c.num_kv_heads == 0) c.num_kv_heads = c.num_heads;
  c.head_dim = r.positive({"head_dim"}, kMaxHeads);
  c.vocab_size = r.positive({"embedding_size"}, kMaxSize);
  if (c.vocab_size == 0) c.vocab_size = r.positive({"vocab_size", "n_vocab"}, kMaxSize);

  if (c.model_type == "hf_olmo") {
    // ff_proj holds gate and up: mlp_hidden_size (or mlp_ratio·d_model) rows, half each for
    // SwiGLU (OLMo's default activation and the one every released OLMo-1 model uses).
    int64_t fused = r.positive({"mlp_hidden_size"}, kMaxSize);
    if (fused == 0 && c.hidden_size > 0) fused = r.positive({"mlp_ratio"}, 1 << 16) * c.hidden_size;
    const std::string act = r.string("activation_type");
    const bool gated = act.empty() || act == "swiglu";
    c.intermediate_size = gated ? fused / 2 : fused;
  } else {
    c.intermediate_size = r.positive({"intermediate_size", "n_inner", "ffn_dim"}, kMaxSize);
    // GPT-2's n_inner: null and nanoGPT's fixed MLP both mean 4·n_embd.
    if (c.intermediate_size == 0 && (c.model_type == "gpt2" || nanogpt)) c.intermediate_size = 4 * c.hidden_size;
  }

  std::optional<bool> tie = r.boolean("tie_word_embeddings");
  if (!tie) tie = r.boolean("weight_tying");
  c.tie_word_embeddings = tie.value_or(default_tie(c.model_type, c.family));

  if (c.num_heads > 0 && c.num_kv_heads > c.num_heads)
    r.fail("num_key_value_heads (" + std::to_string(c.num_kv_heads) + ") exceeds the number of heads (" +
           std::to_string(c.num_heads) + ")");
  if (c.num_heads > 0 && c.num_heads % c.num_kv_heads != 0)
    r.fail("the number of heads (" + std::to_string(c.num_heads) +
           ") is not a multiple of num_key_value_heads (" + std::to_string(c.num_kv_heads) + ")");
  if (c.head_dim == 0 && c.num_heads > 0 && c.hidden_size > 0) {
    if (c.hidden_size % c.num_heads != 0)
      r.fail("hidden size " + std::to_string(c.hidden_size) + " is not a multiple of the number of heads " +
             std::to_string(c.num_heads) + " and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  return c;
}

void from_json(const json& j, ModelConfig& config) { config = model_config_from_json(j, "<json>"); }

ModelConfig parse_model_config(const std::string& json_path) {
  JsonLimits limits;  // a regular file, nesting limited (issue 14)
  limits.syntax_label = "malformed JSON";
  return model_config_from_json(read_json_file(json_path, limits), json_path);
}

}  // namespace muspec
