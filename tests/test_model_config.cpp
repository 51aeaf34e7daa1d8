// ModelConfig: config.json fields of each family (checkpoint-formats.md §6.1), nanoGPT
// model_args, defaults, and clear errors for malformed configs.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/model_config.h"
#include "test_support.h"

using namespace muspec;
using muspec_test::fixture;
using nlohmann::json;

namespace {
ModelConfig load(const std::string& name) { return parse_model_config(fixture("configs/" + name)); }

std::string error_of(const json& j) {
  try {
    model_config_from_json(j, "cfg.json");
  } catch (const InputError& e) {
    CHECK(e.file() == "cfg.json");
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("model config: Llama-family configs: layers, widths, heads, GQA, tying", "[model][config]") {
  SECTION("llama (MHA, untied)") {
    ModelConfig c = load("llama.json");
    CHECK(c.model_type == "llama");
    CHECK(c.family == "llama");
    CHECK(c.num_layers == 32);
    CHECK(c.hidden_size == 4096);
    CHECK(c.num_heads == 32);
    CHECK(c.num_kv_heads == 32);
    CHECK(c.head_dim == 128);
    CHECK(c.intermediate_size == 11008);
    CHECK(c.vocab_size == 32000);
    CHECK_FALSE(c.tie_word_embeddings);
    CHECK(c.source == fixture("configs/llama.json"));
  }
  SECTION("mistral (GQA 32/8)") {
    ModelConfig c = load("mistral.json");
    CHECK(c.family == "llama");
    CHECK(c.num_heads == 32);
    CHECK(c.num_kv_heads == 8);
    CHECK(c.head_dim == 128);
    CHECK(c.intermediate_size == 14336);
  }
  SECTION("qwen2 (GQA 14/2, tied)") {
    ModelConfig c = load("qwen2.json");
    CHECK(c.family == "llama");
    CHECK(c.num_layers == 24);
    CHECK(c.hidden_size == 896);
    CHECK(c.num_kv_heads == 2);
    CHECK(c.head_dim == 64);
    CHECK(c.tie_word_embeddings);
  }
  SECTION("qwen3 (explicit head_dim differs from hidden/heads)") {
    ModelConfig c = load("qwen3.json");
    CHECK(c.hidden_size == 1024);
    CHECK(c.num_heads == 16);
    CHECK(c.head_dim == 128);
  }
  SECTION("HF-native OLMo uses the Llama naming family") {
    ModelConfig c = load("olmo-hf.json");
    CHECK(c.model_type == "olmo");
    CHECK(c.family == "llama");
    CHECK(c.num_layers == 16);
    CHECK(c.intermediate_size == 8192);
  }
  SECTION("phi3") {
    ModelConfig c = load("phi3.json");
    CHECK(c.family == "phi3");
    CHECK(c.head_dim == 96);
    CHECK(c.intermediate_size == 8192);
  }
}

TEST_CASE("model config: GPT-2 config: attribute-map names, n_inner null, tie default", "[model][config]") {
  ModelConfig c = load("gpt2.json");
  CHECK(c.family == "gpt2");
  CHECK(c.num_layers == 12);
  CHECK(c.hidden_size == 768);
  CHECK(c.num_heads == 12);
  CHECK(c.num_kv_heads == 12);
  CHECK(c.head_dim == 64);
  CHECK(c.intermediate_size == 3072);  // n_inner: null → 4·n_embd
  CHECK(c.vocab_size == 50257);
  CHECK(c.tie_word_embeddings);  // PretrainedConfig default: GPT-2's config does not say
}

TEST_CASE("model config: GPT-NeoX / Pythia config", "[model][config]") {
  ModelConfig c = load("pythia-70m.json");
  CHECK(c.family == "gpt_neox");
  CHECK(c.num_layers == 6);
  CHECK(c.hidden_size == 512);
  CHECK(c.num_heads == 8);
  CHECK(c.num_kv_heads == 8);
  CHECK(c.head_dim == 64);
  CHECK(c.intermediate_size == 2048);
  CHECK_FALSE(c.tie_word_embeddings);
}

TEST_CASE("model config: original OLMo (hf_olmo) config: d_model, mlp_ratio, embedding_size", "[model][config]") {
  ModelConfig c = load("hf_olmo.json");
  CHECK(c.family == "olmo");
  CHECK(c.num_layers == 16);
  CHECK(c.hidden_size == 2048);
  CHECK(c.num_heads == 16);
  CHECK(c.num_kv_heads == 16);  // n_kv_heads: null, multi_query_attention: false
  CHECK(c.intermediate_size == 8 * 2048 / 2);  // ff_proj = 8·d_model rows, SwiGLU halves
  CHECK(c.vocab_size == 50304);  // the padded embedding_size, i.e. wte's rows
  CHECK(c.tie_word_embeddings);

  json j = json::parse(muspec_test::read_text(fixture("configs/hf_olmo.json")));
  j["mlp_hidden_size"] = 11008 * 2;
  j["multi_query_attention"] = true;
  j["weight_tying"] = false;
  c = model_config_from_json(j);
  CHECK(c.intermediate_size == 11008);
  CHECK(c.num_kv_heads == 1);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.source == "<json>");
}

TEST_CASE("model config: nanoGPT model_args dict", "[model][config]") {
  ModelConfig c = load("nanogpt_model_args.json");
  CHECK(c.model_type.empty());
  CHECK(c.family == "nanogpt");
  CHECK(c.num_layers == 12);
  CHECK(c.hidden_size == 768);
  CHECK(c.num_heads == 12);
  CHECK(c.intermediate_size == 3072);
  CHECK(c.vocab_size == 50304);
  CHECK(c.tie_word_embeddings);

  // The nlohmann ADL hook gives the same result.
  ModelConfig via_get = json::parse(muspec_test::read_text(fixture("configs/nanogpt_model_args.json"))).get<ModelConfig>();
  CHECK(via_get.num_layers == 12);
  CHECK(via_get.family == "nanogpt");
}

TEST_CASE("model config: config aliases: num_layers / n_layers and partial configs", "[model][config]") {
  ModelConfig c = model_config_from_json(json{{"num_layers", 4}, {"d_model", 64}, {"n_heads", 4}});
  CHECK(c.num_layers == 4);
  CHECK(c.hidden_size == 64);
  CHECK(c.head_dim == 16);
  CHECK(c.family.empty());
  CHECK(model_config_from_json(json{{"n_layers", 3}}).num_layers == 3);
  // Everything optional: an empty dict is a config with nothing known.
  ModelConfig empty = model_config_from_json(json::object());
  CHECK(empty.num_layers == 0);
  CHECK(empty.num_kv_heads == 0);
  CHECK(empty.head_dim == 0);
  // Integral floats are accepted; explicit nulls are "absent".
  c = model_config_from_json(json{{"num_hidden_layers", 24.0}, {"head_dim", nullptr}, {"num_key_value_heads", nullptr},
                                  {"num_attention_heads", 8}, {"hidden_size", 512}});
  CHECK(c.num_layers == 24);
  CHECK(c.num_kv_heads == 8);
  CHECK(c.head_dim == 64);
  // Agreeing duplicates are fine.
  CHECK(model_config_from_json(json{{"num_hidden_layers", 6}, {"n_layer", 6}}).num_layers == 6);
}

TEST_CASE("model config: malformed configs are InputErrors naming the file and the field", "[model][config]") {
  CHECK_THAT(error_of(json::array({1, 2})), Catch::Contains("must be a JSON object"));
  CHECK_THAT(error_of(json{{"num_hidden_layers", "12"}}), Catch::Contains("'num_hidden_layers' must be a positive integer"));
  CHECK_THAT(error_of(json{{"n_layer", -1}}), Catch::Contains("'n_layer'"));
  CHECK_THAT(error_of(json{{"n_layer", 0}}), Catch::Contains("positive integer"));
  CHECK_THAT(error_of(json{{"hidden_size", 12.5}}), Catch::Contains("'hidden_size'"));
  CHECK_THAT(error_of(json{{"hidden_size", 1e300}}), Catch::Contains("no larger than"));
  CHECK_THAT(error_of(json{{"num_hidden_layers", 2000000}}), Catch::Contains("no larger than 1000000"));
  CHECK_THAT(error_of(json{{"num_attention_heads", true}}), Catch::Contains("'num_attention_heads'"));
  CHECK_THAT(error_of(json{{"model_type", 7}}), Catch::Contains("'model_type' must be a string"));
  CHECK_THAT(error_of(json{{"tie_word_embeddings", "yes"}}), Catch::Contains("true or false"));
  CHECK_THAT(error_of(json{{"num_hidden_layers", 12}, {"n_layer", 24}}), Catch::Contains("conflicting sizes"));
  CHECK_THAT(error_of(json{{"num_attention_heads", 12}, {"num_key_value_heads", 5}}), Catch::Contains("not a multiple"));
  CHECK_THAT(error_of(json{{"num_attention_heads", 4}, {"num_key_value_heads", 8}}), Catch::Contains("exceeds"));
  CHECK_THAT(error_of(json{{"num_attention_heads", 7}, {"hidden_size", 64}}), Catch::Contains("no head_dim"));
  CHECK(error_of(json{{"num_attention_heads", 7}, {"hidden_size", 64}, {"head_dim", 9}}).empty());
}

TEST_CASE("model config: unreadable and non-JSON config files", "[model][config]") {
  muspec_test::TempDir dir("cfg");
  try {
    parse_model_config(dir.file("missing.json"));
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    CHECK(e.file() == dir.file("missing.json"));
    CHECK_THAT(e.reason(), Catch::Contains("cannot open"));
  }
  const std::string bad = dir.file("bad.json");
  muspec_test::write_bytes(bad, "{\"num_hidden_layers\": 12,");
  CHECK_THROWS_WITH(parse_model_config(bad), Catch::Contains("malformed JSON") && Catch::Contains("bad.json"));
  muspec_test::write_bytes(bad, "");
  CHECK_THROWS_AS(parse_model_config(bad), InputError);
  muspec_test::write_bytes(bad, "\"just a string\"");
  CHECK_THROWS_WITH(parse_model_config(bad), Catch::Contains("must be a JSON object"));
  CHECK_THROWS_AS(parse_model_config(dir.path().string()), InputError);  // a directory
}
