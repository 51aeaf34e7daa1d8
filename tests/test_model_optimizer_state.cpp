// Optimizer state dicts written by real PyTorch -> state tensors with recovered names. The
// oracle: each fixture's JSON (written by tests/fixtures/make_torch_fixtures.py) says which
// parameter each id belongs to.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "io/torch_file.h"
#include "model/optimizer_state.h"
#include "test_support.h"

using namespace muspec;

namespace {
std::vector<ModelParam> two_layer_model() {  // from two_layer_model.pt, in state_dict order
  const auto f = TorchFile::open(muspec_test::fixture("torch/two_layer_model.pt"));
  std::vector<ModelParam> m;
  for (const auto& e : f->entries()) m.push_back({e.name, e.shape});
  return m;
}
}  // namespace

TEST_CASE("optimizer state: SGD momentum buffers map to names with the plain recipe", "[model][optimizer]") {
  const auto f = TorchFile::open(muspec_test::fixture("torch/optim_sgd.pt"));
  const auto layout = find_optimizer_layout(*f);
  REQUIRE(layout);
  CHECK(layout->prefix.empty());
  REQUIRE(layout->groups.size() == 1);
  CHECK(layout->groups[0].params == std::vector<std::string>{"0", "1", "2", "3"});
  CHECK(layout->groups[0].hyper["momentum"] == 0.9);
  CHECK(layout->groups[0].hyper["lr"] == 0.1);
  REQUIRE(layout->tensors.size() == 4);
  CHECK(state_kind(layout->tensors[0].state_key) == "momentum");
  const auto model = two_layer_model();
  const NameRecovery r = recover_parameter_names(*layout, {}, "plain", model);
  CHECK(r.ok());
  CHECK(r.source == "recipe:plain");
  CHECK(r.names.at("0") == "fc1.weight");
  CHECK(r.names.at("3") == "fc2.bias");
  // A wrong recipe is caught by shapes: nanogpt puts both weights first.
  const NameRecovery wrong = recover_parameter_names(*layout, {}, "nanogpt", model);
  CHECK_FALSE(wrong.ok());
}

TEST_CASE("optimizer state: Muon with auxiliary Adam, AdamW, and a nanoGPT ckpt.pt", "[model][optimizer]") {
  const auto model = two_layer_model();
  {
    const auto f = TorchFile::open(muspec_test::fixture("torch/optim_muon.pt"));
    const auto layout = find_optimizer_layout(*f);
    REQUIRE(layout);
    REQUIRE(layout->groups.size() == 2);
    CHECK(layout->groups[0].hyper["use_muon"] == true);
    const NameRecovery r = recover_parameter_names(*layout, {}, "muon-then-adam", model);
    CHECK(r.ok());
    CHECK(r.names.at("0") == "fc1.weight");
    CHECK(r.names.at("1") == "fc2.weight");
    CHECK(r.names.at("2") == "fc1.bias");
    // An explicit order (a mapping file / manifest) wins over the recipe and is checked too.
    const NameRecovery bad = recover_parameter_names(*layout, {"fc2.weight", "fc1.weight", "fc1.bias", "fc2.bias"}, "", model);
    CHECK(bad.source == "explicit");
    CHECK_FALSE(bad.ok());
    CHECK_THAT(bad.problems.front(), Catch::Contains("shape"));
  }
  {
    const auto f = TorchFile::open(muspec_test::fixture("torch/optim_adamw.pt"));
    const auto layout = find_optimizer_layout(*f);
    REQUIRE(layout);
    int exp_avg = 0;
    for (const auto& t : layout->tensors) exp_avg += state_kind(t.state_key) == "exp_avg";
    CHECK(exp_avg == 4);
    CHECK(layout->groups[0].hyper.contains("initial_lr"));
    CHECK(recover_parameter_names(*layout, {}, "plain", model).ok());
  }
  {
    const auto f = TorchFile::open(muspec_test::fixture("torch/nanogpt/ckpt.pt"));
    const auto layout = find_optimizer_layout(*f);
    REQUIRE(layout);
    CHECK(layout->prefix == "optimizer/");
    CHECK_FALSE(layout->tensors.empty());
  }
  // No names anywhere and no recipe: reported, not guessed.
  const auto f = TorchFile::open(muspec_test::fixture("torch/optim_sgd.pt"));
  const NameRecovery none = recover_parameter_names(*find_optimizer_layout(*f), {}, "", {});
  CHECK_FALSE(none.ok());
  CHECK_THROWS_AS(recover_parameter_names(*find_optimizer_layout(*f), {}, "alphabetical", model), UsageError);
  // A model state_dict is not an optimizer.
  CHECK_FALSE(find_optimizer_layout(*TorchFile::open(muspec_test::fixture("torch/two_layer_model.pt"))));
}

namespace {
/// A hand-made optimizer layout: one tensor per (id, shape), grouped as given.
OptimizerLayout layout_of(const std::vector<std::vector<std::vector<int64_t>>>& group_shapes) {
  OptimizerLayout l;
  int id = 0;
  for (const auto& g : group_shapes) {
    ParamGroupInfo info;
    for (const auto& shape : g) {
      OptimizerStateTensor t;
      t.param_key = std::to_string(id);
      t.param_id = id++;
      t.state_key = "momentum_buffer";
      t.shape = shape;
      info.params.push_back(t.param_key);
      l.tensors.push_back(t);
    }
    l.groups.push_back(info);
  }
  return l;
}
}  // namespace

TEST_CASE("optimizer state: without a recipe every recipe is tried, a unique fit is used", "[model][optimizer]") {
  const auto f = TorchFile::open(muspec_test::fixture("torch/optim_sgd.pt"));
  const NameRecovery r = recover_parameter_names(*find_optimizer_layout(*f), {}, "", two_layer_model());
  CHECK(r.ok());
  CHECK(r.source == "recipe:plain");
  CHECK(r.names.at("1") == "fc1.bias");
  CHECK(r.tried.size() == name_recipes().size());
  // The KJ README layout: Muon group size-sorted, aux group = gains, head, embedding.
  const std::vector<ModelParam> model = {{"embed.weight", {10, 4}}, {"blocks.0.fc.weight", {3, 4}}, {"blocks.0.proj.weight", {4, 8}},
                                         {"blocks.0.norm.weight", {4}}, {"lm_head.weight", {10, 4}}};
  const OptimizerLayout kj = layout_of({{{4, 8}, {3, 4}}, {{4}, {10, 4}, {10, 4}}});
  const NameRecovery k = recover_parameter_names(kj, {}, "", model);
  INFO(k.tried.size());
  CHECK(k.ok());
  CHECK(k.names.at("0") == "blocks.0.proj.weight");
  CHECK(k.names.at("3") == "lm_head.weight");
  CHECK(k.names.at("4") == "embed.weight");
}

TEST_CASE("optimizer state: two recipes that fit with different names are reported, not guessed", "[model][optimizer]") {
  // plain = [embed, x]; muon-first = [x, embed]: equal shapes, one group of two.
  const std::vector<ModelParam> model = {{"embed.weight", {4, 4}}, {"layers.0.x.weight", {4, 4}}};
  const NameRecovery r = recover_parameter_names(layout_of({{{4, 4}, {4, 4}}}), {}, "", model);
  CHECK_FALSE(r.ok());
  CHECK(r.names.empty());
  CHECK_THAT(r.problems.front(), Catch::Contains("plain") && Catch::Contains("muon-first") && Catch::Contains("differently"));
}

TEST_CASE("optimizer state: a group that checks keeps its names when another group fits no recipe", "[model][optimizer]") {
  const std::vector<ModelParam> model = {{"embed.weight", {10, 4}}, {"layers.0.a.weight", {3, 4}}, {"layers.0.b.weight", {4, 3}},
                                         {"layers.0.norm.weight", {4}}, {"lm_head.weight", {10, 4}}};
  // group 1 lists the 1-D gain with a shape no parameter has: no recipe can fit it.
  const NameRecovery r = recover_parameter_names(layout_of({{{3, 4}, {4, 3}}, {{10, 4}, {7}, {10, 4}}}), {}, "", model);
  CHECK_FALSE(r.ok());
  CHECK(r.names.at("0") == "layers.0.a.weight");
  CHECK(r.names.at("1") == "layers.0.b.weight");
  CHECK(r.names.count("3") == 0);
  CHECK_THAT(r.problems.front(), Catch::Contains("param group 1"));
}

TEST_CASE("optimizer state: a mapping naming a parameter the model does not have is refused", "[model][optimizer]") {
  const auto f = TorchFile::open(muspec_test::fixture("torch/optim_sgd.pt"));
  const NameRecovery r =
      recover_parameter_names(*find_optimizer_layout(*f), {"fc1.weight", "fc1.bias", "fc9.weight", "fc2.bias"}, "", two_layer_model());
  CHECK_FALSE(r.ok());
  CHECK(r.names.empty());
  CHECK_THAT(r.problems.front(), Catch::Contains("not a parameter"));
}

TEST_CASE("parameter order: names sorted as save_pretrained writes them come back in module order", "[model][optimizer]") {
  // transformers LlamaForCausalLM registers model.embed_tokens, model.layers (self_attn q k v o,
  // mlp gate up down, input_layernorm, post_attention_layernorm), model.norm, then lm_head.
  std::vector<std::string> truth = {"model.embed_tokens.weight"};
  for (int l = 0; l < 11; ++l)
    for (const char* m : {"self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                          "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
                          "input_layernorm.weight", "post_attention_layernorm.weight"})
      truth.push_back("model.layers." + std::to_string(l) + "." + m);
  truth.push_back("model.norm.weight");
  truth.push_back("lm_head.weight");
  std::vector<ModelParam> sorted;
  for (const auto& n : truth) sorted.push_back({n, {2, 2}});
  std::sort(sorted.begin(), sorted.end(), [](const ModelParam& a, const ModelParam& b) { return a.name < b.name; });
  REQUIRE(sorted[1].name != truth[1]);  // layers.10 sorts before layers.2
  std::string why;
  const auto order = registration_order(sorted, &why);
  REQUIRE(order);
  for (size_t i = 0; i < truth.size(); ++i) CHECK((*order)[i].name == truth[i]);
  // A module with no known place: no order at all, and the name is given.
  sorted.push_back({"model.layers.0.adapter.weight", {2, 2}});
  CHECK_FALSE(registration_order(sorted, &why));
  CHECK_THAT(why, Catch::Contains("adapter"));
}
