// Layer identity: real parameter names and shapes of each family (checkpoint-formats.md §4.4–4.7,
// §6.2), overrides, the generic block-index rule, relative depth, and fused-tensor splits checked
// against an independent construction that follows each model's own forward code.
#include <catch2/catch.hpp>

#include <climits>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/model_config.h"
#include "model/naming.h"
#include "test_support.h"

using namespace muspec;
using Op = OperatorType;
using Shape = std::vector<int64_t>;

namespace {

struct Expect {
  const char* name;
  Shape shape;
  Op op;
  int layer;
  bool transposed;
  bool eligible;
};

void check_all(const ParameterNamer& namer, const char* family, const std::vector<Expect>& cases) {
  for (const Expect& e : cases) {
    INFO("name: " << e.name << "  hint: " << namer.family_hint());
    const LayerIdentity id = namer.identify(e.name, e.shape);
    CHECK(operator_type_name(id.op) == std::string(operator_type_name(e.op)));
    CHECK(id.layer == e.layer);
    CHECK(id.stored_transposed == e.transposed);
    CHECK(id.muon_eligible == e.eligible);
    if (family) CHECK(id.family == family);
  }
}

ModelConfig config(const std::string& name) { return parse_model_config(muspec_test::fixture("configs/" + name)); }

}  // namespace

TEST_CASE("model naming: operator type names round-trip", "[model][naming]") {
  const std::vector<std::string> names = {"q",  "k",    "v",     "qkv",  "o",    "gate", "up",
                                          "gate_up", "down", "embed", "head", "norm", "other"};
  for (size_t i = 0; i < names.size(); ++i) {
    const Op op = static_cast<Op>(i);
    CHECK(operator_type_name(op) == names[i]);
    REQUIRE(parse_operator_type(names[i]).has_value());
    CHECK(*parse_operator_type(names[i]) == op);
  }
  CHECK_FALSE(parse_operator_type("Q").has_value());
  CHECK_FALSE(parse_operator_type("gateup").has_value());
}

TEST_CASE("model naming: Llama / Mistral / Qwen2 / Qwen3 / OLMo-2 names", "[model][naming]") {
  // Llama-2-7B shapes (H 4096, I 11008, V 32000); Mistral's GQA k/v are (8·128, 4096).
  ParameterNamer namer;
  check_all(namer, "llama",
            {{"model.embed_tokens.weight", {32000, 4096}, Op::Embed, -1, false, false},
             {"model.layers.0.self_attn.q_proj.weight", {4096, 4096}, Op::Q, 0, false, true},
             {"model.layers.31.self_attn.k_proj.weight", {1024, 4096}, Op::K, 31, false, true},
             {"model.layers.7.self_attn.v_proj.weight", {1024, 4096}, Op::V, 7, false, true},
             {"model.layers.7.self_attn.o_proj.weight", {4096, 4096}, Op::O, 7, false, true},
             {"model.layers.12.mlp.gate_proj.weight", {11008, 4096}, Op::Gate, 12, false, true},
             {"model.layers.12.mlp.up_proj.weight", {11008, 4096}, Op::Up, 12, false, true},
             {"model.layers.12.mlp.down_proj.weight", {4096, 11008}, Op::Down, 12, false, true},
             {"model.layers.3.input_layernorm.weight", {4096}, Op::Norm, 3, false, false},
             {"model.layers.3.post_attention_layernorm.weight", {4096}, Op::Norm, 3, false, false},
             {"model.layers.3.post_feedforward_layernorm.weight", {4096}, Op::Norm, 3, false, false},  // OLMo-2
             {"model.layers.3.self_attn.q_norm.weight", {128}, Op::Norm, 3, false, false},             // Qwen3
             {"model.layers.2.self_attn.q_proj.bias", {896}, Op::Q, 2, false, false},                  // Qwen2
             {"model.norm.weight", {4096}, Op::Norm, -1, false, false},
             {"lm_head.weight", {32000, 4096}, Op::Head, -1, false, false},
             // AutoModel saves (no "model.") and PEFT wrappers keep working.
             {"layers.5.self_attn.q_proj.weight", {64, 64}, Op::Q, 5, false, true},
             {"norm.weight", {64}, Op::Norm, -1, false, false},
             {"base_model.model.model.layers.2.mlp.down_proj.weight", {64, 256}, Op::Down, 2, false, true}});
  CHECK(namer.identify("model.layers.2.self_attn.q_proj.bias", {896}).bias);
  // A hint from config.json's model_type selects the same rows.
  CHECK(ParameterNamer("qwen2").family_hint() == "llama");
  CHECK(ParameterNamer("mistral").identify("model.layers.1.mlp.up_proj.weight", {8, 4}).family == "llama");
}

TEST_CASE("model naming: Phi-3 fused qkv_proj and gate_up_proj", "[model][naming]") {
  ParameterNamer namer("phi3");
  const LayerIdentity qkv = namer.identify("model.layers.4.self_attn.qkv_proj.weight", {9216, 3072});
  CHECK(qkv.op == Op::QKV);
  CHECK(qkv.family == "phi3");
  CHECK(qkv.fused == FusedLayout::QkvConcatRows);
  CHECK(qkv.muon_eligible);
  const LayerIdentity gu = namer.identify("model.layers.4.mlp.gate_up_proj.weight", {16384, 3072});
  CHECK(gu.op == Op::GateUp);
  CHECK(gu.fused == FusedLayout::GateUpRows);
  CHECK(gu.layer == 4);
  CHECK(namer.identify("model.layers.4.self_attn.o_proj.weight", {3072, 3072}).op == Op::O);
}

TEST_CASE("model naming: GPT-2 (Hugging Face): Conv1D weights are stored transposed", "[model][naming]") {
  const std::vector<Expect> cases = {
      {"transformer.wte.weight", {50257, 768}, Op::Embed, -1, false, false},
      {"transformer.wpe.weight", {1024, 768}, Op::Embed, -1, false, false},
      {"transformer.h.0.ln_1.weight", {768}, Op::Norm, 0, false, false},
      {"transformer.h.0.ln_2.bias", {768}, Op::Norm, 0, false, false},
      {"transformer.h.0.attn.c_attn.weight", {768, 2304}, Op::QKV, 0, true, true},
      {"transformer.h.0.attn.c_attn.bias", {2304}, Op::QKV, 0, false, false},
      {"transformer.h.11.attn.c_proj.weight", {768, 768}, Op::O, 11, true, true},
      {"transformer.h.11.mlp.c_fc.weight", {768, 3072}, Op::Up, 11, true, true},
      {"transformer.h.11.mlp.c_proj.weight", {3072, 768}, Op::Down, 11, true, true},
      {"transformer.ln_f.weight", {768}, Op::Norm, -1, false, false},
      // The hub's gpt2 file has no "transformer." prefix (§1.4); old files hold mask buffers.
      {"h.3.attn.c_attn.weight", {768, 2304}, Op::QKV, 3, true, true},
      {"h.3.mlp.c_proj.weight", {3072, 768}, Op::Down, 3, true, true},
      {"wte.weight", {50257, 768}, Op::Embed, -1, false, false},
      {"h.0.attn.bias", {1, 1, 1024, 1024}, Op::Other, 0, false, false},
  };
  check_all(ParameterNamer(), "gpt2", cases);
  check_all(ParameterNamer("gpt2"), "gpt2", cases);
  CHECK(ParameterNamer().identify("transformer.h.0.attn.c_attn.weight", {768, 2304}).fused == FusedLayout::QkvConcatCols);
}

TEST_CASE("model naming: nanoGPT: the same names as nn.Linear (out, in), with _orig_mod.", "[model][naming]") {
  const std::vector<Expect> cases = {
      {"_orig_mod.transformer.wte.weight", {50304, 768}, Op::Embed, -1, false, false},
      {"_orig_mod.transformer.h.0.attn.c_attn.weight", {2304, 768}, Op::QKV, 0, false, true},
      {"_orig_mod.transformer.h.0.attn.c_proj.weight", {768, 768}, Op::O, 0, false, true},
      {"_orig_mod.transformer.h.2.mlp.c_fc.weight", {3072, 768}, Op::Up, 2, false, true},
      {"_orig_mod.transformer.h.2.mlp.c_proj.weight", {768, 3072}, Op::Down, 2, false, true},
      {"_orig_mod.transformer.h.2.ln_1.weight", {768}, Op::Norm, 2, false, false},
      {"_orig_mod.transformer.ln_f.weight", {768}, Op::Norm, -1, false, false},
      {"_orig_mod.lm_head.weight", {50304, 768}, Op::Head, -1, false, false},
  };
  // _orig_mod. implies nanoGPT; an explicit hint does the same for uncompiled checkpoints.
  check_all(ParameterNamer(), "nanogpt", cases);
  ParameterNamer hinted("nanogpt");
  const LayerIdentity id = hinted.identify("transformer.h.0.attn.c_attn.weight", {2304, 768});
  CHECK(id.family == "nanogpt");
  CHECK_FALSE(id.stored_transposed);
  CHECK(id.fused == FusedLayout::QkvConcatRows);
  CHECK(id.parameter == "transformer.h.0.attn.c_attn.weight");
  CHECK(ParameterNamer().identify("_orig_mod.transformer.h.0.attn.c_attn.weight", {2304, 768}).parameter ==
        "transformer.h.0.attn.c_attn.weight");
  // Without prefix or hint the Hugging Face reading (Conv1D) wins.
  CHECK(ParameterNamer().identify("transformer.h.0.attn.c_attn.weight", {768, 2304}).stored_transposed);
}

TEST_CASE("model naming: GPT-NeoX / Pythia names", "[model][naming]") {
  // pythia-70m: H 512, 4H 2048, V 50304.
  check_all(ParameterNamer("gpt_neox"), "gpt_neox",
            {{"gpt_neox.embed_in.weight", {50304, 512}, Op::Embed, -1, false, false},
             {"gpt_neox.layers.0.input_layernorm.weight", {512}, Op::Norm, 0, false, false},
             {"gpt_neox.layers.0.post_attention_layernorm.bias", {512}, Op::Norm, 0, false, false},
             {"gpt_neox.layers.0.attention.query_key_value.weight", {1536, 512}, Op::QKV, 0, false, true},
             {"gpt_neox.layers.0.attention.query_key_value.bias", {1536}, Op::QKV, 0, false, false},
             {"gpt_neox.layers.5.attention.dense.weight", {512, 512}, Op::O, 5, false, true},
             {"gpt_neox.layers.5.mlp.dense_h_to_4h.weight", {2048, 512}, Op::Up, 5, false, true},
             {"gpt_neox.layers.5.mlp.dense_4h_to_h.weight", {512, 2048}, Op::Down, 5, false, true},
             {"gpt_neox.final_layer_norm.weight", {512}, Op::Norm, -1, false, false},
             {"embed_out.weight", {50304, 512}, Op::Head, -1, false, false}});
  const LayerIdentity qkv = ParameterNamer().identify("gpt_neox.layers.0.attention.query_key_value.weight", {1536, 512});
  CHECK(qkv.family == "gpt_neox");
  CHECK(qkv.fused == FusedLayout::QkvHeadInterleaved);
  // A buffer no row names: "other", block index from the generic rule, no family.
  const LayerIdentity inv = ParameterNamer().identify("gpt_neox.layers.4.attention.rotary_emb.inv_freq", {16});
  CHECK(inv.op == Op::Other);
  CHECK(inv.layer == 4);
  CHECK(inv.family.empty());
  CHECK_FALSE(inv.muon_eligible);
}

TEST_CASE("model naming: original OLMo and OLMo-core names", "[model][naming]") {
  // OLMo-1B (hf_olmo): d 2048, ff_proj 8·d rows (up‖gate), ff_out (d, 4·d).
  check_all(ParameterNamer("hf_olmo"), "olmo",
            {{"model.transformer.wte.weight", {50304, 2048}, Op::Embed, -1, false, false},
             {"model.transformer.blocks.0.att_proj.weight", {6144, 2048}, Op::QKV, 0, false, true},
             {"model.transformer.blocks.0.attn_out.weight", {2048, 2048}, Op::O, 0, false, true},
             {"model.transformer.blocks.15.ff_proj.weight", {16384, 2048}, Op::GateUp, 15, false, true},
             {"model.transformer.blocks.15.ff_out.weight", {2048, 8192}, Op::Down, 15, false, true},
             {"model.transformer.blocks.15.attn_norm.weight", {2048}, Op::Norm, 15, false, false},
             {"transformer.blocks.1.ff_norm.weight", {2048}, Op::Norm, 1, false, false},
             {"model.transformer.ff_out.weight", {50304, 2048}, Op::Head, -1, false, false},
             {"model.transformer.ln_f.weight", {2048}, Op::Norm, -1, false, false}});
  CHECK(ParameterNamer().identify("transformer.blocks.0.ff_proj.weight", {16, 4}).fused == FusedLayout::UpGateRows);
  CHECK(ParameterNamer().identify("transformer.blocks.0.att_proj.weight", {12, 4}).fused == FusedLayout::QkvConcatRows);

  check_all(ParameterNamer("olmo-core"), "olmo-core",
            {{"embeddings.weight", {100352, 2048}, Op::Embed, -1, false, false},
             {"blocks.0.attention.w_q.weight", {2048, 2048}, Op::Q, 0, false, true},
             {"blocks.0.attention.w_k.weight", {2048, 2048}, Op::K, 0, false, true},
             {"blocks.0.attention.w_v.weight", {2048, 2048}, Op::V, 0, false, true},
             {"blocks.0.attention.w_out.weight", {2048, 2048}, Op::O, 0, false, true},
             {"blocks.9.feed_forward.w1.weight", {8192, 2048}, Op::Gate, 9, false, true},
             {"blocks.9.feed_forward.w2.weight", {2048, 8192}, Op::Down, 9, false, true},
             {"blocks.9.feed_forward.w3.weight", {8192, 2048}, Op::Up, 9, false, true},
             {"blocks.9.attention_norm.weight", {2048}, Op::Norm, 9, false, false},
             {"blocks.9.feed_forward_norm.weight", {2048}, Op::Norm, 9, false, false},
             {"blocks.9.attention.q_norm.weight", {2048}, Op::Norm, 9, false, false},
             {"lm_head.norm.weight", {2048}, Op::Norm, -1, false, false},
             {"lm_head.w_out.weight", {100352, 2048}, Op::Head, -1, false, false},
             // A DCP state wrapped as {"model": ...} flattens to "model.blocks...".
             {"model.blocks.3.attention.w_q.weight", {2048, 2048}, Op::Q, 3, false, true}});
}

TEST_CASE("model naming: modded-nanogpt (February 2025): 3-D qkv_w, value embeddings", "[model][naming]") {
  check_all(ParameterNamer(), nullptr,
            {{"_orig_mod.embed.weight", {50304, 768}, Op::Embed, -1, false, false},
             {"_orig_mod.value_embeds.1.weight", {50304, 768}, Op::Embed, -1, false, false},
             {"_orig_mod.blocks.0.attn.qkv_w", {3, 768, 768}, Op::QKV, 0, false, true},
             {"_orig_mod.blocks.0.attn.c_proj.weight", {768, 768}, Op::O, 0, false, true},
             {"_orig_mod.blocks.11.mlp.c_fc.weight", {3072, 768}, Op::Up, 11, false, true},
             {"_orig_mod.blocks.11.mlp.c_proj.weight", {768, 3072}, Op::Down, 11, false, true},
             {"_orig_mod.blocks.3.lambdas", {2}, Op::Other, 3, false, false},
             {"_orig_mod.blocks.3.attn.lambdas", {2}, Op::Other, 3, false, false},
             {"_orig_mod.skip_weights", {6}, Op::Other, -1, false, false},
             {"_orig_mod.lm_head.weight", {50304, 768}, Op::Head, -1, false, false},
             // 2024 variant: separate c_q / c_k / c_v
             {"_orig_mod.transformer.h.1.attn.c_q.weight", {768, 768}, Op::Q, 1, false, true},
             {"_orig_mod.transformer.h.1.attn.c_v.weight", {768, 768}, Op::V, 1, false, true},
             // HEAD's parameter banks are not in the table
             {"_orig_mod.mlp_bank", {12, 2, 3072, 768}, Op::Other, -1, false, false}});
  const LayerIdentity qkv = ParameterNamer().identify("_orig_mod.blocks.0.attn.qkv_w", {3, 768, 768});
  CHECK(qkv.family == "modded-nanogpt");
  CHECK(qkv.fused == FusedLayout::QkvStacked3D);
  CHECK(qkv.parameter == "blocks.0.attn.qkv_w");
  CHECK(ParameterNamer("modded-nanogpt").identify("_orig_mod.lm_head.weight", {8, 4}).family == "modded-nanogpt");
}

TEST_CASE("model naming: Megatron-core names", "[model][naming]") {
  check_all(ParameterNamer("megatron"), "megatron",
            {{"embedding.word_embeddings.weight", {32000, 4096}, Op::Embed, -1, false, false},
             {"decoder.layers.0.self_attention.linear_qkv.weight", {6144, 4096}, Op::QKV, 0, false, true},
             {"decoder.layers.0.self_attention.linear_qkv.layer_norm_weight", {4096}, Op::Norm, 0, false, false},
             {"decoder.layers.0.self_attention.linear_proj.weight", {4096, 4096}, Op::O, 0, false, true},
             {"decoder.layers.0.mlp.linear_fc1.weight", {22016, 4096}, Op::Up, 0, false, true},
             {"decoder.layers.0.mlp.linear_fc2.weight", {4096, 11008}, Op::Down, 0, false, true},
             {"decoder.layers.0.pre_mlp_layernorm.weight", {4096}, Op::Norm, 0, false, false},
             {"decoder.final_layernorm.weight", {4096}, Op::Norm, -1, false, false},
             {"output_layer.weight", {32000, 4096}, Op::Head, -1, false, false}});
}

TEST_CASE("model naming: wrapper prefixes are stripped, model. is kept", "[model][naming]") {
  bool orig = false;
  CHECK(ParameterNamer::canonical_name("module._orig_mod.transformer.h.0.attn.c_attn.weight", &orig) ==
        "transformer.h.0.attn.c_attn.weight");
  CHECK(orig);
  CHECK(ParameterNamer::canonical_name("model.layers.0._checkpoint_wrapped_module.self_attn.q_proj.weight", &orig) ==
        "model.layers.0.self_attn.q_proj.weight");
  CHECK_FALSE(orig);
  CHECK(ParameterNamer::canonical_name("_fsdp_wrapped_module.model.norm.weight") == "model.norm.weight");
  CHECK(ParameterNamer::canonical_name("blocks.0._orig_mod.attn.qkv_w") == "blocks.0.attn.qkv_w");
  CHECK(ParameterNamer::canonical_name("encoder.module.weight") == "encoder.module.weight");  // not leading
  CHECK(ParameterNamer::canonical_name("") == "");
  CHECK(ParameterNamer::canonical_name("_orig_mod") == "_orig_mod");
  const LayerIdentity id = ParameterNamer().identify("module.model.layers.3.mlp.up_proj.weight", {8, 4});
  CHECK(id.parameter == "model.layers.3.mlp.up_proj.weight");
  CHECK(id.op == Op::Up);
}

TEST_CASE("model naming: unknown names: other, with the first all-digit component as block index", "[model][naming]") {
  ParameterNamer namer;
  LayerIdentity id = namer.identify("encoder.layers.7.experts.3.w1.weight", {64, 32});
  CHECK(id.op == Op::Other);
  CHECK(id.layer == 7);
  CHECK(id.family.empty());
  CHECK(id.muon_eligible);  // a 2-D matrix inside a block
  id = namer.identify("encoder.layers.7.stack.w1", {8, 64, 32});
  CHECK_FALSE(id.muon_eligible);  // an unknown 3-D tensor is not assumed to be a batch of matrices
  id = namer.identify("encoder.layers.7.experts.w1", {8, 64, 32});
  CHECK(id.expert_bank);  // named as an expert bank: one Muon matrix per expert
  CHECK(id.muon_eligible);
  id = namer.identify("frontend.proj.weight", {64, 32});
  CHECK(id.layer == -1);
  CHECK_FALSE(id.muon_eligible);  // not in a block
  CHECK(generic_block_index("foo.12") == -1);  // the last component is the tensor name
  CHECK(generic_block_index("x.01.y") == 1);
  CHECK(generic_block_index("x.99999999999.y") == -1);
  CHECK(generic_block_index("x.2147483647.y") == INT_MAX);
  CHECK(generic_block_index("x.1a.2.y") == 2);
  CHECK(generic_block_index("") == -1);

  // Hostile lengths skip the regexes but still parse the block index; no crash.
  std::string huge;
  for (int i = 0; i < 50000; ++i) huge += "a.";
  huge += "5.self_attn.q_proj.weight";
  id = namer.identify(huge, {4, 4});
  CHECK(id.op == Op::Other);
  CHECK(id.layer == 5);
  // The longest name still matched, built to make the backtracking patterns work hardest.
  std::string longest = "decoder.layers.1.";
  longest += std::string(kMaxMatchedNameLength - longest.size() - std::string("_layernorm.weight").size(), 'x');
  longest += "_layernorm.weight";
  REQUIRE(longest.size() == kMaxMatchedNameLength);
  id = namer.identify(longest, {4});
  CHECK(id.op == Op::Norm);
  CHECK(id.layer == 1);
}

TEST_CASE("model naming: user overrides are tried first and replace only the op", "[model][naming]") {
  ParameterNamer namer("gpt2");
  namer.add_override(R"(attn\.c_attn\.weight$)", Op::Other);
  namer.add_override(parse_op_rule(R"(my_mixer\.weight$=up)"));
  namer.add_override(R"(my_mixer)", Op::Down);  // later rules lose
  namer.add_override(R"(fused_in\.weight$)", Op::QKV);
  namer.add_override(R"(layers\.\d+\.self_attn\.q_proj)", Op::K);

  LayerIdentity id = namer.identify("transformer.h.4.attn.c_attn.weight", {768, 2304});
  CHECK(id.op == Op::Other);
  CHECK(id.overridden);
  CHECK(id.layer == 4);                 // still from the table row
  CHECK(id.stored_transposed);          // still Conv1D
  CHECK(id.fused == FusedLayout::None);
  id = namer.identify("encoder.blocks.4.my_mixer.weight", {64, 64});
  CHECK(id.op == Op::Up);
  CHECK(id.layer == 4);                 // generic rule
  CHECK(id.muon_eligible);
  id = namer.identify("blocks.2.fused_in.weight", {96, 32});
  CHECK(id.op == Op::QKV);
  CHECK(id.fused == FusedLayout::QkvConcatRows);
  CHECK(namer.identify("model.layers.0.self_attn.q_proj.weight", {8, 8}).op == Op::K);
  CHECK_FALSE(namer.identify("model.layers.0.self_attn.v_proj.weight", {8, 8}).overridden);
  CHECK_THROWS_AS(namer.add_override("([", Op::Q), UsageError);
  const ParameterNamer copy = namer;  // rules and hint travel with copies
  CHECK(copy.identify("transformer.h.4.attn.c_attn.weight", {768, 2304}).op == Op::Other);
  CHECK(copy.family_hint() == "gpt2");
}

TEST_CASE("model naming: parse_op_rule and family hints", "[model][naming]") {
  OpRule r = parse_op_rule(R"(a=b\.weight$=gate_up)");
  CHECK(r.regex == R"(a=b\.weight$)");
  CHECK(r.op == Op::GateUp);
  r = parse_op_rule(R"((?=x)y=q)");
  CHECK(r.regex == "(?=x)y");
  CHECK_THROWS_WITH(parse_op_rule("no_equals"), Catch::Contains("REGEX=op"));
  CHECK_THROWS_WITH(parse_op_rule("=q"), Catch::Contains("empty regex"));
  CHECK_THROWS_WITH(parse_op_rule("x=query"), Catch::Contains("unknown operator type 'query'") && Catch::Contains("gate_up"));
  CHECK_THROWS_AS(parse_op_rule("([=q"), UsageError);

  CHECK(ParameterNamer("pythia").family_hint() == "gpt_neox");
  CHECK(ParameterNamer("hf_olmo").family_hint() == "olmo");
  CHECK(ParameterNamer("olmo").family_hint() == "olmo");  // a table family wins over the model_type alias
  CHECK(ParameterNamer("").family_hint().empty());
  CHECK_THROWS_WITH(ParameterNamer("lama"), Catch::Contains("unknown model family 'lama'") && Catch::Contains("gpt_neox"));
  CHECK(family_for_model_type("olmo") == "llama");
  CHECK(family_for_model_type("gpt_neox") == "gpt_neox");
  CHECK(family_for_model_type("bert").empty());
}

TEST_CASE("model naming: relative depth", "[model][naming]") {
  CHECK(relative_depth(0, 12) == 0.0);
  CHECK(relative_depth(11, 12) == 1.0);
  CHECK(relative_depth(5, 11) == Approx(0.5));
  CHECK(relative_depth(0, 1) == 0.0);
  CHECK(relative_depth(-1, 12) == -1.0);  // embeddings, head, final norm
  CHECK(relative_depth(3, 0) == -1.0);    // depth unknown
  CHECK_THROWS_AS(relative_depth(12, 12), UsageError);
}

// ---------------------------------------------------------------------------------------------
// Fused splits. Each test builds the separate q/k/v (or gate/up) matrices first, assembles the
// stored tensor the way the model's own code reads it (torch.cat, view + chunk, Conv1D x @ W),
// then checks that slicing the stored tensor with fused_parts() gives back exactly those
// matrices. Entries encode (part, row, column) so any misplaced row or column shows.

namespace {

struct Mat {
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> v;
  int64_t& at(int64_t r, int64_t c) { return v[static_cast<size_t>(r * cols + c)]; }
  int64_t at(int64_t r, int64_t c) const { return v[static_cast<size_t>(r * cols + c)]; }
  bool operator==(const Mat& o) const { return rows == o.rows && cols == o.cols && v == o.v; }
};

Mat make(int64_t rows, int64_t cols) { return {rows, cols, std::vector<int64_t>(static_cast<size_t>(rows * cols))}; }

// A (rows, cols) matrix whose entry (r, c) is part·10^6 + r·10^3 + c.
Mat coded(int part, int64_t rows, int64_t cols) {
  Mat m = make(rows, cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) m.at(r, c) = part * 1000000 + r * 1000 + c;
  return m;
}

Mat transpose(const Mat& m) {
  Mat t = make(m.cols, m.rows);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c) t.at(c, r) = m.at(r, c);
  return t;
}

// A minimal slicer: gather part.index along part.axis of a row-major tensor, reshape to
// part.shape, and return the part in reporting orientation (out, in).
Mat slice(const std::vector<int64_t>& data, const Shape& shape, const FusedPart& p) {
  const std::vector<int64_t> idx = p.index.indices();
  std::vector<int64_t> out;
  if (shape.size() == 3) {
    REQUIRE(p.axis == 0);
    const int64_t plane = shape[1] * shape[2];
    for (int64_t i : idx) out.insert(out.end(), data.begin() + i * plane, data.begin() + (i + 1) * plane);
  } else if (p.axis == 0) {
    for (int64_t i : idx) out.insert(out.end(), data.begin() + i * shape[1], data.begin() + (i + 1) * shape[1]);
  } else {
    for (int64_t r = 0; r < shape[0]; ++r)
      for (int64_t i : idx) out.push_back(data[static_cast<size_t>(r * shape[1] + i)]);
  }
  REQUIRE(p.shape.size() == 2);
  REQUIRE(static_cast<int64_t>(out.size()) == p.shape[0] * p.shape[1]);
  Mat m{p.shape[0], p.shape[1], out};
  return p.stored_transposed ? transpose(m) : m;
}

void check_split(const LayerIdentity& id, const ModelConfig& c, const Mat& stored, const std::vector<Mat>& expected,
                 const std::vector<Op>& ops) {
  const Shape shape{stored.rows, stored.cols};
  const std::vector<FusedPart> parts = fused_parts(id, c, shape);
  REQUIRE(parts.size() == expected.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    INFO("part " << i);
    CHECK(parts[i].op == ops[i]);
    CHECK(slice(stored.v, shape, parts[i]) == expected[i]);
  }
}

ModelConfig small_config(int64_t hidden, int64_t heads, int64_t kv, int64_t head_dim, int64_t inter = 0) {
  ModelConfig c;
  c.source = "test-config";
  c.hidden_size = hidden;
  c.num_heads = heads;
  c.num_kv_heads = kv;
  c.head_dim = head_dim;
  c.intermediate_size = inter;
  return c;
}

const std::vector<Op> kQKV{Op::Q, Op::K, Op::V};

}  // namespace

TEST_CASE("model naming: q‖k‖v concatenated rows (Phi-3 qkv_proj, OLMo att_proj) with GQA", "[model][naming][fused]") {
  const int64_t H = 5, heads = 4, kv = 2, hd = 3;
  const Mat q = coded(0, heads * hd, H), k = coded(1, kv * hd, H), v = coded(2, kv * hd, H);
  Mat stored = make(q.rows + k.rows + v.rows, H);  // torch.cat([q, k, v], dim=0)
  std::vector<int64_t> cat = q.v;
  cat.insert(cat.end(), k.v.begin(), k.v.end());
  cat.insert(cat.end(), v.v.begin(), v.v.end());
  stored.v = cat;
  const LayerIdentity id = ParameterNamer().identify("model.layers.0.self_attn.qkv_proj.weight", {stored.rows, H});
  check_split(id, small_config(H, heads, kv, hd), stored, {q, k, v}, kQKV);
  const LayerIdentity olmo = ParameterNamer().identify("transformer.blocks.0.att_proj.weight", {stored.rows, H});
  check_split(olmo, small_config(H, heads, kv, hd), stored, {q, k, v}, kQKV);
}

TEST_CASE("model naming: GPT-2 c_attn: Conv1D (in, 3·out), parts along columns, reported (out, in)", "[model][naming][fused]") {
  const int64_t C = 6;  // n_embd; 2 heads of 3
  const Mat q = coded(0, C, C), k = coded(1, C, C), v = coded(2, C, C);  // nn.Linear orientation (out, in)
  // Conv1D computes x @ W, so W[i][p·C + o] = part_p[o][i].
  Mat W = make(C, 3 * C);
  const Mat* parts[] = {&q, &k, &v};
  for (int p = 0; p < 3; ++p)
    for (int64_t o = 0; o < C; ++o)
      for (int64_t i = 0; i < C; ++i) W.at(i, p * C + o) = parts[p]->at(o, i);
  const LayerIdentity id = ParameterNamer("gpt2").identify("transformer.h.0.attn.c_attn.weight", {C, 3 * C});
  REQUIRE(id.stored_transposed);
  check_split(id, small_config(C, 2, 2, 3), W, {q, k, v}, kQKV);
  const std::vector<FusedPart> fp = fused_parts(id, small_config(C, 2, 2, 3), {C, 3 * C});
  CHECK(fp[1].axis == 1);
  CHECK(fp[1].index.start == C);
  CHECK(fp[1].shape == Shape{C, C});
}

TEST_CASE("model naming: GPT-NeoX query_key_value: rows interleaved per head", "[model][naming][fused]") {
  const int64_t H = 4, heads = 3, hd = 2;
  const Mat q = coded(0, heads * hd, H), k = coded(1, heads * hd, H), v = coded(2, heads * hd, H);
  // HF GPTNeoXAttention: qkv.view(..., heads, 3·hd); q = [..., :hd], k = [..., hd:2hd], v = [..., 2hd:].
  // So stored row r belongs to head r / (3·hd), part (r % 3·hd) / hd, dim r % hd.
  Mat stored = make(3 * heads * hd, H);
  const Mat* parts[] = {&q, &k, &v};
  for (int64_t r = 0; r < stored.rows; ++r) {
    const int64_t head = r / (3 * hd), part = (r % (3 * hd)) / hd, dim = r % hd;
    for (int64_t c = 0; c < H; ++c) stored.at(r, c) = parts[part]->at(head * hd + dim, c);
  }
  const LayerIdentity id = ParameterNamer().identify("gpt_neox.layers.0.attention.query_key_value.weight", {stored.rows, H});
  check_split(id, small_config(H, heads, heads, 0), stored, {q, k, v}, kQKV);  // head_dim inferred

  // pythia-70m from its config: 8 heads of 64; q = rows {0..63, 192..255, ...}.
  const ModelConfig pythia = config("pythia-70m.json");
  const std::vector<FusedPart> fp = fused_parts(id, pythia, {1536, 512});
  REQUIRE(fp.size() == 3);
  CHECK(fp[0].index.start == 0);
  CHECK(fp[0].index.block == 64);
  CHECK(fp[0].index.count == 8);
  CHECK(fp[0].index.stride == 192);
  CHECK(fp[2].index.start == 128);
  CHECK(fp[2].shape == Shape{512, 512});
}

TEST_CASE("model naming: Megatron linear_qkv: rows grouped per KV group", "[model][naming][fused]") {
  const int64_t H = 3, heads = 6, kv = 2, hd = 2, per = heads / kv;
  const Mat q = coded(0, heads * hd, H), k = coded(1, kv * hd, H), v = coded(2, kv * hd, H);
  // view(kv, (per + 2)·hd) then split [per·hd, hd, hd] inside each group.
  Mat stored = make((heads + 2 * kv) * hd, H);
  for (int64_t r = 0; r < stored.rows; ++r) {
    const int64_t g = r / ((per + 2) * hd), c = r % ((per + 2) * hd);
    const Mat* src = c < per * hd ? &q : (c < (per + 1) * hd ? &k : &v);
    const int64_t row = c < per * hd ? g * per * hd + c : g * hd + (c - (c < (per + 1) * hd ? per * hd : (per + 1) * hd));
    for (int64_t col = 0; col < H; ++col) stored.at(r, col) = src->at(row, col);
  }
  const LayerIdentity id =
      ParameterNamer().identify("decoder.layers.0.self_attention.linear_qkv.weight", {stored.rows, H});
  check_split(id, small_config(H, heads, kv, hd), stored, {q, k, v}, kQKV);
}

TEST_CASE("model naming: modded-nanogpt qkv_w (3, hdim, dim): part p is qkv_w[p]", "[model][naming][fused]") {
  const int64_t dim = 4, hdim = 6;
  const Mat q = coded(0, hdim, dim), k = coded(1, hdim, dim), v = coded(2, hdim, dim);
  std::vector<int64_t> stacked = q.v;  // torch.stack along a new leading axis
  stacked.insert(stacked.end(), k.v.begin(), k.v.end());
  stacked.insert(stacked.end(), v.v.begin(), v.v.end());
  const Shape shape{3, hdim, dim};
  const LayerIdentity id = ParameterNamer().identify("_orig_mod.blocks.2.attn.qkv_w", shape);
  const std::vector<FusedPart> parts = fused_parts(id, ModelConfig{}, shape);  // no config needed
  REQUIRE(parts.size() == 3);
  const Mat* want[] = {&q, &k, &v};
  for (size_t p = 0; p < 3; ++p) CHECK(slice(stacked, shape, parts[p]) == *want[p]);
  CHECK_THROWS_WITH(fused_parts(id, small_config(dim, 2, 2, 2), shape), Catch::Contains("each part's row count"));
  CHECK_THROWS_WITH(fused_parts(id, ModelConfig{}, {2, hdim, dim}), Catch::Contains("leading dimension"));
  CHECK_THROWS_WITH(fused_parts(id, ModelConfig{}, {hdim, dim}), Catch::Contains("3-D"));
}

TEST_CASE("model naming: gate‖up: Phi-3 [gate, up] and original OLMo [up, gate]", "[model][naming][fused]") {
  const int64_t H = 4, I = 5;
  const Mat gate = coded(3, I, H), up = coded(4, I, H);
  Mat gate_first = make(2 * I, H), up_first = make(2 * I, H);
  gate_first.v = gate.v;
  gate_first.v.insert(gate_first.v.end(), up.v.begin(), up.v.end());
  up_first.v = up.v;
  up_first.v.insert(up_first.v.end(), gate.v.begin(), gate.v.end());
  const ModelConfig c = small_config(H, 0, 0, 0, I);
  check_split(ParameterNamer().identify("model.layers.1.mlp.gate_up_proj.weight", {2 * I, H}), c, gate_first, {gate, up},
              {Op::Gate, Op::Up});
  // OLMo: `up, gate = torch.chunk(ff_proj, 2, dim=0)`; parts still come out gate first.
  check_split(ParameterNamer().identify("transformer.blocks.1.ff_proj.weight", {2 * I, H}), c, up_first, {gate, up},
              {Op::Gate, Op::Up});
  // hf_olmo fixture: ff_proj (16384, 2048) → halves of 8192 = intermediate_size.
  const ModelConfig olmo = config("hf_olmo.json");
  const std::vector<FusedPart> fp =
      fused_parts(ParameterNamer("hf_olmo").identify("model.transformer.blocks.0.ff_proj.weight", {16384, 2048}), olmo,
                  {16384, 2048});
  REQUIRE(fp.size() == 2);
  CHECK(fp[0].op == Op::Gate);
  CHECK(fp[0].index.start == 8192);
  CHECK(fp[1].index.start == 0);
}

TEST_CASE("model naming: fused splits reject shapes that disagree with the config", "[model][naming][fused]") {
  const ModelConfig mistral = config("mistral.json");  // 32 heads, 8 KV heads, head_dim 128, H 4096
  const LayerIdentity qkv = ParameterNamer().identify("model.layers.0.self_attn.qkv_proj.weight", {6144, 4096});
  CHECK(fused_parts(qkv, mistral, {6144, 4096}).size() == 3);  // (32 + 2·8)·128
  try {
    fused_parts(qkv, mistral, {12288, 4096});  // as if MHA
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    CHECK(e.file() == mistral.source);
    CHECK(e.tensor() == "model.layers.0.self_attn.qkv_proj.weight");
    CHECK_THAT(e.reason(), Catch::Contains("(12288, 4096)") && Catch::Contains("6144"));
  }
  CHECK_THROWS_WITH(fused_parts(qkv, mistral, {6144, 4095}), Catch::Contains("input dimension"));
  CHECK_THROWS_WITH(fused_parts(qkv, ModelConfig{}, {6144, 4096}), Catch::Contains("num_attention_heads"));
  CHECK_THROWS_WITH(fused_parts(qkv, mistral, {6144}), Catch::Contains("2-D"));
  CHECK_THROWS_WITH(fused_parts(qkv, mistral, {0, 4096}), Catch::Contains("not positive"));

  const ModelConfig pythia = config("pythia-70m.json");
  const LayerIdentity neox = ParameterNamer().identify("gpt_neox.layers.0.attention.query_key_value.weight", {1537, 512});
  CHECK_THROWS_WITH(fused_parts(neox, pythia, {1537, 512}), Catch::Contains("multiple of 3·heads"));
  CHECK_THROWS_WITH(fused_parts(neox, pythia, {1560, 512}), Catch::Contains("head dimension"));

  const LayerIdentity gpt2 = ParameterNamer("gpt2").identify("transformer.h.0.attn.c_attn.weight", {768, 2304});
  CHECK(fused_parts(gpt2, config("gpt2.json"), {768, 2304}).size() == 3);
  CHECK_THROWS_WITH(fused_parts(gpt2, config("gpt2.json"), {2304, 768}), Catch::Contains("each part's width"));
  CHECK_THROWS_WITH(fused_parts(gpt2, ModelConfig{}, {768, 2300}), Catch::Contains("not a multiple of 3"));

  const LayerIdentity gu = ParameterNamer().identify("model.layers.0.mlp.gate_up_proj.weight", {16384, 3072});
  CHECK(fused_parts(gu, config("phi3.json"), {16384, 3072}).size() == 2);
  CHECK_THROWS_WITH(fused_parts(gu, config("phi3.json"), {16385, 3072}), Catch::Contains("odd"));
  CHECK_THROWS_WITH(fused_parts(gu, config("phi3.json"), {16000, 3072}), Catch::Contains("each half"));

  ModelConfig bad = small_config(8, 6, 4, 2);  // hand-built, heads not a multiple of KV heads
  CHECK_THROWS_WITH(fused_parts(qkv, bad, {28, 8}), Catch::Contains("not a multiple"));

  // Non-fused tensors and biases have no parts.
  CHECK(fused_parts(ParameterNamer().identify("model.layers.0.self_attn.q_proj.weight", {8, 8}), mistral, {8, 8}).empty());
  CHECK(fused_parts(ParameterNamer().identify("gpt_neox.layers.0.attention.query_key_value.bias", {1536}), pythia, {1536})
            .empty());
}

TEST_CASE("model naming: mixture-of-experts, MLA and torchtitan names", "[model][naming]") {
  ParameterNamer namer;
  struct Case {
    const char* name;
    std::vector<int64_t> shape;
    Op op;
    int layer;
    bool muon;
  };
  // Names as transformers (Mixtral, Qwen2-MoE, DeepSeek-V3, Llama-4), Meta's llama3 and
  // torchtitan register them; the op is what the module computes.
  const Case cases[] = {
      {"model.layers.3.block_sparse_moe.experts.5.w1.weight", {14, 8}, Op::Gate, 3, true},
      {"model.layers.3.block_sparse_moe.experts.5.w2.weight", {8, 14}, Op::Down, 3, true},
      {"model.layers.3.block_sparse_moe.experts.5.w3.weight", {14, 8}, Op::Up, 3, true},
      {"model.layers.3.block_sparse_moe.gate.weight", {8, 8}, Op::Router, 3, false},
      {"model.layers.2.mlp.experts.7.down_proj.weight", {8, 14}, Op::Down, 2, true},
      {"model.layers.2.mlp.shared_expert.up_proj.weight", {14, 8}, Op::Up, 2, true},
      {"model.layers.2.mlp.shared_expert_gate.weight", {1, 8}, Op::Router, 2, false},
      {"model.layers.2.mlp.gate.weight", {64, 8}, Op::Router, 2, false},
      {"model.layers.2.mlp.experts.gate_proj", {4, 14, 8}, Op::Gate, 2, true},
      {"language_model.model.layers.1.feed_forward.experts.gate_up_proj", {4, 8, 28}, Op::GateUp, 1, true},
      {"layers.1.moe.experts.w2", {4, 8, 14}, Op::Down, 1, true},
      {"layers.1.moe.router.gate.weight", {4, 8}, Op::Router, 1, false},
      {"model.layers.4.self_attn.q_a_proj.weight", {12, 8}, Op::QA, 4, true},
      {"model.layers.4.self_attn.q_b_proj.weight", {16, 12}, Op::QB, 4, true},
      {"model.layers.4.self_attn.kv_a_proj_with_mqa.weight", {10, 8}, Op::KVA, 4, true},
      {"model.layers.4.self_attn.kv_b_proj.weight", {24, 6}, Op::KVB, 4, true},
      {"model.layers.4.self_attn.kv_a_layernorm.weight", {6}, Op::Norm, 4, false},
      {"layers.0.attention.wq.weight", {8, 8}, Op::Q, 0, true},
      {"layers.0.attention.wo.weight", {8, 8}, Op::O, 0, true},
      {"layers.0.feed_forward.w1.weight", {14, 8}, Op::Gate, 0, true},
      {"layers.0.feed_forward.w2.weight", {8, 14}, Op::Down, 0, true},
      {"layers.0.feed_forward.w3.weight", {14, 8}, Op::Up, 0, true},
      {"layers.0.ffn_norm.weight", {8}, Op::Norm, 0, false},
      {"tok_embeddings.weight", {32, 8}, Op::Embed, -1, false},
      {"output.weight", {32, 8}, Op::Head, -1, false},
      {"norm.weight", {8}, Op::Norm, -1, false},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const LayerIdentity id = namer.identify(c.name, c.shape);
    CHECK(id.op == c.op);
    CHECK(id.layer == c.layer);
    CHECK(id.muon_eligible == c.muon);
  }
  CHECK(std::string(operator_type_name(Op::Router)) == "router");
  CHECK(parse_operator_type("kv_b") == Op::KVB);
}

TEST_CASE("model naming: --op-rule sets Muon eligibility with or without an op", "[model][naming]") {
  ParameterNamer namer;
  namer.add_override(parse_op_rule(R"(mlp\.gate\.weight$=muon)"));
  namer.add_override(parse_op_rule(R"(self_attn\.o_proj=o,no-muon)"));
  LayerIdentity id = namer.identify("model.layers.0.mlp.gate.weight", {64, 8});
  CHECK(id.op == Op::Router);  // the op stays
  CHECK(id.muon_eligible);
  id = namer.identify("model.layers.0.self_attn.o_proj.weight", {8, 8});
  CHECK(id.op == Op::O);
  CHECK_FALSE(id.muon_eligible);
  CHECK_THROWS_AS(parse_op_rule("x=frobnicate,muon"), muspec::UsageError);
  CHECK_FALSE(parse_op_rule("x=muon").op);
}
