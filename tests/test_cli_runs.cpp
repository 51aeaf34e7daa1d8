// End-to-end: `muspec scan` on the real PyTorch training runs in sample_data/runs (written by
// tools/python/train_tiny_gpt.py): every momentum buffer is labelled with the run, step, model
// size, parameter name, operator type and layer that the training script recorded.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "test_support.h"

using muspec_test::run_muspec;
using muspec_test::TempDir;
using nlohmann::json;

TEST_CASE("scan labels momentum buffers of a real run with names from its manifest", "[e2e][runs]") {
  const std::string run = muspec_test::source_dir() + "/sample_data/runs/d24";
  const json manifest = json::parse(muspec_test::read_text(run + "/muspec-run.json"));
  TempDir dir("runs");
  auto r = run_muspec("scan " + run + "/checkpoint-25 " + run + "/checkpoint-300 --json " + dir.file("s.json") + " -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json m = json::parse(muspec_test::read_text(dir.file("s.json")))["matrices"];
  // Muon's group holds the 2-D hidden matrices: 7 per layer; each is a momentum buffer.
  const int layers = manifest["layers"];
  REQUIRE(m.size() == static_cast<size_t>(2 * 7 * layers));
  const auto order = manifest["param_order"].get<std::vector<std::string>>();
  for (size_t i = 0; i < m.size(); ++i) {
    const auto& x = m[i];
    INFO(x.dump());
    CHECK(x["kind"] == "momentum");
    CHECK(x["run"] == manifest["run"]);
    CHECK(x["model_params"] == manifest["params"]);
    CHECK(x["step"] == (i < m.size() / 2 ? 25 : 300));
    CHECK(x["num_layers"] == layers);
    // optimizer id k is param_order[k]; the stored tensor is state/<k>/momentum_buffer
    const std::string tensor = x["tensor"];
    const size_t id = std::stoul(tensor.substr(6, tensor.find('/', 6) - 6));
    CHECK(x["parameter"] == order.at(id));
    const std::string p = x["parameter"];
    const int layer = std::stoi(p.substr(p.find("layers.") + 7));
    CHECK(x["layer"] == layer);
    CHECK(x["rel_depth"].get<double>() == Approx(static_cast<double>(layer) / (layers - 1)));
    CHECK(x["muon"] == true);
    const std::string op = x["op_type"];
    CHECK(p.find(op == "gate" || op == "up" || op == "down" ? "mlp." + op + "_proj" : "self_attn." + op + "_proj") != std::string::npos);
  }
  // --kind weights picks the weights of the same checkpoint instead, including embeddings.
  r = run_muspec("scan " + run + "/checkpoint-25 --kind weights --json " + dir.file("w.json") + " -q");
  REQUIRE(r.exit_code == 0);
  const json w = json::parse(muspec_test::read_text(dir.file("w.json")))["matrices"];
  bool saw_embed = false;
  for (const auto& x : w) {
    CHECK(x["kind"] == "weight");
    saw_embed |= x["op_type"] == "embed";
    if (x["op_type"] == "embed" || x["op_type"] == "head") CHECK(x["muon"] == false);
  }
  CHECK(saw_embed);
}

TEST_CASE("scan: without a manifest or recipe, optimizer state is labelled by id and the gap is reported", "[e2e][runs]") {
  TempDir dir("noman");
  const std::string src = muspec_test::fixture("torch/optim_sgd.pt");
  auto r = run_muspec("scan " + src + " --json " + dir.file("s.json") + " -q");
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("names not recovered"));
  const json m = json::parse(muspec_test::read_text(dir.file("s.json")))["matrices"];
  REQUIRE(!m.empty());
  CHECK(m[0]["parameter"] == "state[0]");
  // With a mapping file the names come back, checked by shape.
  muspec_test::write_bytes(dir.file("map.json"), R"(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])");
  r = run_muspec("scan " + src + " --param-map " + dir.file("map.json") + " --json " + dir.file("t.json") + " -q");
  REQUIRE(r.exit_code == 0);
  const json t = json::parse(muspec_test::read_text(dir.file("t.json")))["matrices"];
  CHECK(t[0]["parameter"] == "fc1.weight");
  CHECK(t[1]["parameter"] == "fc2.weight");
}

#include <cstring>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "scan/synthetic.h"

TEST_CASE("scan --split-fused analyses q, k and v of a fused Phi-3 qkv_proj separately", "[e2e][runs]") {
  // q (32x32), k and v (16x32 each: 2 KV heads of dim 8) with planted spectra, stacked as
  // Phi-3 stores qkv_proj: rows [q; k; v].
  using namespace muspec;
  SynthRng rng(3);
  const auto sq = make_spectrum(parse_spectrum_spec("logspace:0.01,1"), 32, 0);
  const auto sk = make_spectrum(parse_spectrum_spec("power:1"), 16, 0);
  const auto sv = make_spectrum(parse_spectrum_spec("logspace:0.5,2"), 16, 0);
  std::vector<double> w = make_matrix_with_spectrum(32, 32, sq, rng);
  for (const auto* s : {&sk, &sv}) {
    const auto part = make_matrix_with_spectrum(16, 32, *s, rng);
    w.insert(w.end(), part.begin(), part.end());
  }
  TempDir dir("fused");
  write_safetensors(dir.file("model.safetensors"),
                    {{"model.layers.0.self_attn.qkv_proj.weight", DType::F64, {64, 32}, round_to_dtype(w, DType::F64).bytes}}, {});
  muspec_test::write_bytes(dir.file("config.json"),
                           R"({"model_type": "phi3", "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
                               "num_hidden_layers": 1, "intermediate_size": 64, "vocab_size": 100})");
  auto r = run_muspec("scan " + dir.file("model.safetensors") + " --split-fused --method svd --json " + dir.file("s.json") + " -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json m = json::parse(muspec_test::read_text(dir.file("s.json")))["matrices"];
  REQUIRE(m.size() == 3);
  const std::vector<const std::vector<double>*> planted = {&sq, &sk, &sv};
  const char* ops[] = {"q", "k", "v"};
  for (size_t i = 0; i < 3; ++i) {
    INFO(m[i].dump());
    CHECK(m[i]["op_type"] == ops[i]);
    CHECK(m[i]["sigma_max"].get<double>() == Approx(planted[i]->back()).epsilon(1e-12));
    CHECK(m[i]["sigma_min"].get<double>() == Approx(planted[i]->front()).epsilon(1e-10));
  }
  // Without the flag the fused tensor is one matrix.
  r = run_muspec("scan " + dir.file("model.safetensors") + " --json " + dir.file("t.json") + " -q");
  REQUIRE(r.exit_code == 0);
  const json t = json::parse(muspec_test::read_text(dir.file("t.json")))["matrices"];
  REQUIRE(t.size() == 1);
  CHECK(t[0]["op_type"] == "qkv");
}
