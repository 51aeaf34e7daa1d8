// End-to-end, zero configuration: `muspec scan DIR` with no flags and no manifest on checkpoint
// directories written by ordinary PyTorch training code (tests/fixtures/make_layout_fixtures.py:
// HF Trainer, a plain SGD loop, Keller Jordan's MuonWithAuxAdam, nanoGPT with and without
// torch.compile, GPT-2 Conv1D, a mixture-of-experts bank model, torchtitan names). The oracle is
// expected.json, written from the live PyTorch objects at save time: named_parameters(), the
// optimizer's id -> parameter map, the step and the trainable parameter count.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "test_support.h"

using muspec_test::run_muspec;
using muspec_test::TempDir;
using nlohmann::json;

namespace {

std::string layout_dir(const std::string& name) { return muspec_test::fixture("layouts/" + name); }

struct Truth {
  json expected;
  std::map<std::string, json> param;  // name without wrapper prefix -> {shape, op, layer}
  std::vector<std::string> id_name;   // optimizer id -> name without wrapper prefix
};

Truth truth_of(const std::string& layout) {
  Truth t;
  t.expected = json::parse(muspec_test::read_text(layout_dir(layout) + "/expected.json"));
  for (const auto& p : t.expected["params"]) t.param[p["name"].get<std::string>()] = p;
  for (const auto& n : t.expected["optimizer_ids"]) t.id_name.push_back(n.get<std::string>());
  return t;
}

/// The optimizer id in a stored state path such as "state/12/momentum_buffer" or
/// "optimizer/state/3/exp_avg". A pickled optimizer object keys its state by tensors, stored as
/// "#k" (the k-th key); torch inserts that state in id order, so k is the id.
size_t state_id(const std::string& tensor) {
  size_t at = tensor.find("state/") + 6;
  if (tensor[at] == '#') ++at;
  return std::stoul(tensor.substr(at, tensor.find('/', at) - at));
}

json scan_json(const std::string& dir, const std::string& extra, muspec_test::RunResult* result = nullptr) {
  TempDir tmp("layout");
  auto r = run_muspec("scan " + dir + " " + extra + " --json " + tmp.file("s.json") + " -q");
  INFO(r.err);
  if (result) *result = r;
  REQUIRE(r.exit_code == 0);
  return json::parse(muspec_test::read_text(tmp.file("s.json")))["matrices"];
}

/// Every record carries the truth: name, kind, op type, layer, layers, step and model size.
void check_layout(const std::string& layout, const std::string& subdir) {
  const Truth t = truth_of(layout);
  muspec_test::RunResult r;
  const json m = scan_json(layout_dir(layout) + subdir, "", &r);
  const std::string kind = t.expected["kind"];
  const std::string state_key = kind == "momentum" ? "momentum_buffer" : kind;
  size_t want = 0;  // matrices: one per >= 2-D parameter with that state, one per expert of a bank
  for (const auto& [name, p] : t.param)
    if (p["shape"].size() >= 2 && p["state"].dump().find('"' + state_key + '"') != std::string::npos)
      want += p["shape"].size() == 3 ? p["shape"][0].get<size_t>() : 1;
  CHECK(m.size() == want);
  CHECK_THAT(r.err, !Catch::Contains("not recovered"));
  for (const auto& x : m) {
    INFO(layout << ": " << x.dump());
    REQUIRE(x["kind"] == kind);
    const std::string truth_name = t.id_name.at(state_id(x["tensor"]));
    CHECK(x["parameter"] == truth_name);
    REQUIRE(t.param.count(truth_name) == 1);
    const json& p = t.param.at(truth_name);
    CHECK(x["op_type"] == p["op"]);
    CHECK(x["layer"] == p["layer"]);
    CHECK(x["num_layers"] == t.expected["num_layers"]);
    CHECK(x["step"] == t.expected["step"]);
    CHECK(x["model_params"] == t.expected["model_params"]);
    CHECK(x["params_source"] == "weights");
    // Muon matrices: 2-D hidden weights and each expert of a bank; never embeddings, head, router.
    const std::string op = p["op"];
    CHECK(x["muon"] == (op != "embed" && op != "head" && op != "norm" && op != "router"));
    // Records report (out, in): a Conv1D weight is stored (in, out).
    const auto& shape = p["shape"];
    const bool conv1d = layout == "gpt2_conv1d" && op != "embed" && op != "head";  // Conv1D modules only
    CHECK(x["shape"][0] == shape[shape.size() - (conv1d ? 1 : 2)]);
    CHECK(x["transposed"] == conv1d);
  }
}

}  // namespace

TEST_CASE("zero-config: HF Trainer checkpoint with AdamW decay groups, safetensors sorted by name", "[e2e][layouts]") {
  check_layout("hf_trainer", "/run");
}

TEST_CASE("zero-config: plain loop, pytorch_model.bin with a rotary buffer and SGD momentum", "[e2e][layouts]") {
  check_layout("plain_sgd", "");
}

TEST_CASE("zero-config: Keller Jordan MuonWithAuxAdam, README group order, size-sorted Muon group", "[e2e][layouts]") {
  check_layout("kj_muon", "/run");
}

TEST_CASE("zero-config: nanoGPT ckpt.pt (tied weights, model_args, iter_num), plain and torch.compile'd", "[e2e][layouts]") {
  check_layout("nanogpt", "/out");
  check_layout("nanogpt_compiled", "/out");
}

TEST_CASE("zero-config: GPT-2 Conv1D weights in bf16 safetensors, state oriented like its weights", "[e2e][layouts]") {
  check_layout("gpt2_conv1d", "/run");
}

TEST_CASE("zero-config: expert banks are Muon matrices per expert, the router is not", "[e2e][layouts]") {
  check_layout("moe_bank", "/run");
}

TEST_CASE("zero-config: torchtitan / Meta-Llama names without config.json, layers inferred", "[e2e][layouts]") {
  check_layout("torchtitan", "/run");
  muspec_test::RunResult r;
  scan_json(layout_dir("torchtitan") + "/run", "", &r);
  CHECK_THAT(r.err, Catch::Contains("num_layers inferred as 3"));
  // --layers overrides the inference and silences the note.
  const json m = scan_json(layout_dir("torchtitan") + "/run", "--layers 4", &r);
  CHECK(m.front()["num_layers"] == 4);
  CHECK_THAT(r.err, !Catch::Contains("inferred"));
}

TEST_CASE("zero-config: --kind weights on an HF Trainer step reads only model weights", "[e2e][layouts]") {
  const Truth t = truth_of("hf_trainer");
  const json m = scan_json(layout_dir("hf_trainer") + "/run", "--kind weights");
  size_t matrices = 0;
  for (const auto& [name, p] : t.param) matrices += p["shape"].size() == 2;
  CHECK(m.size() == matrices);  // rng_state.pth, scheduler.pt and training_args.bin hold none
  for (const auto& x : m) {
    CHECK(x["kind"] == "weight");
    CHECK(t.param.count(x["parameter"].get<std::string>()) == 1);
    CHECK(x["model_params"] == t.expected["model_params"]);
  }
}

TEST_CASE("zero-config: a selection that matches nothing names the kinds that exist", "[e2e][layouts]") {
  auto r = run_muspec("scan " + layout_dir("hf_trainer") + "/run --kind momentum -q");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("exp_avg") && Catch::Contains("--kind exp_avg"));
}

TEST_CASE("zero-config: a wrong --param-map is refused in every layout", "[e2e][layouts]") {
  for (const std::string layout : {"plain_sgd", "nanogpt_compiled", "kj_muon", "hf_trainer"}) {
    const Truth t = truth_of(layout);
    // Swap two ids whose parameters differ in shape, keeping the list's length.
    std::vector<std::string> names = t.id_name;
    size_t a = 0, b = 1;
    while (b < names.size() && t.param.at(names[a])["shape"] == t.param.at(names[b])["shape"]) ++b;
    REQUIRE(b < names.size());
    std::swap(names[a], names[b]);
    TempDir tmp("pmap");
    muspec_test::write_bytes(tmp.file("map.json"), json(names).dump());
    const std::string sub = layout == "plain_sgd" ? "" : layout.rfind("nanogpt", 0) == 0 ? "/out" : "/run";
    muspec_test::RunResult r;
    const json m = scan_json(layout_dir(layout) + sub, "--param-map " + tmp.file("map.json"), &r);
    INFO(layout << "\n" << r.err);
    CHECK_THAT(r.err, Catch::Contains("names not recovered"));
    for (const auto& x : m) CHECK(x["parameter"].get<std::string>().rfind("state[", 0) == 0);
  }
}

TEST_CASE("zero-config: a pickled torch.optim.Adam object (protocol 2, state keyed by tensors)", "[e2e][layouts]") {
  check_layout("pickled_optimizer", "");
}

TEST_CASE("zero-config: files with nothing to analyse are named, object arrays are reported", "[e2e][layouts]") {
  const std::string odd = layout_dir("odd_files");
  auto r = run_muspec("scan " + odd + "/empty_list.pt -q");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("empty_list.pt"));
  r = run_muspec("scan " + odd + "/objarr.npy -q");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("objarr.npy") && Catch::Contains("object arrays hold Python pickles"));
  TempDir tmp("odd");
  r = run_muspec("scan " + odd + "/mixed.npz --json " + tmp.file("s.json") + " -q");
  CHECK(r.exit_code == 1);  // the matrix is analysed; the object array is reported as skipped
  CHECK_THAT(r.err, Catch::Contains("'meta'") && Catch::Contains("pickles"));
  CHECK(json::parse(muspec_test::read_text(tmp.file("s.json")))["matrices"].size() == 1);
  r = run_muspec("scan " + odd + "/slash_names.npz --json " + tmp.file("n.json") + " -q");
  CHECK(r.exit_code == 0);  // '/' in an .npz member name is part of the tensor name
  CHECK(json::parse(muspec_test::read_text(tmp.file("n.json")))["matrices"][0]["kind"] == "weight");
}

TEST_CASE("zero-config: a manifest written from Python keeps its good fields, each note once", "[e2e][layouts]") {
  // "params": 2e7 is written by Python as 20000000.0; "layers" is malformed. Two checkpoints.
  TempDir tmp("pyman");
  const std::string run = tmp.file("d24");
  for (const std::string step : {"checkpoint-25", "checkpoint-300"}) {
    std::filesystem::create_directories(run + "/" + step);
    std::filesystem::copy_file(muspec_test::source_dir() + "/sample_data/runs/d24/" + step + "/model.safetensors",
                               run + "/" + step + "/model.safetensors");
  }
  muspec_test::write_bytes(run + "/muspec-run.json", R"({"run": "d24-py", "params": 20000000.0, "layers": "four"})");
  auto r = run_muspec("scan " + run + " --kind weights --json " + tmp.file("s.json") + " -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json m = json::parse(muspec_test::read_text(tmp.file("s.json")))["matrices"];
  REQUIRE(!m.empty());
  for (const auto& x : m) {
    CHECK(x["run"] == "d24-py");
    CHECK(x["model_params"] == 20000000);
    CHECK(x["params_source"] == "manifest");
  }
  const std::string note = "'layers' must be a non-negative whole number";
  const size_t first = r.err.find(note);
  REQUIRE(first != std::string::npos);
  CHECK(r.err.find(note, first + 1) == std::string::npos);  // once, not per checkpoint
}
