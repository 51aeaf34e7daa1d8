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
