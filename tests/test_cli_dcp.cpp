// End to end: `muspec scan STEP_DIR` on PyTorch Distributed Checkpoint directories
// (tests/fixtures/make_dcp_fixtures.py), with no flags: every record labelled like any other
// (name, kind, step, layer, op), marked as coming from a sharded checkpoint with its shard count,
// and its ‖X‖_F equal to that of the unsharded tensor torch held (expected/<variant>.safetensors).
// Hostile directories are reported with file and tensor, exit code 1, the good tensors analysed.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/safetensors.h"
#include "test_support.h"

using muspec_test::run_muspec;
using muspec_test::TempDir;
using nlohmann::json;

namespace {

std::string dcp_dir(const std::string& rel) { return muspec_test::fixture("dcp/" + rel); }

json scan(const std::string& args, int expected_exit, muspec_test::RunResult* out = nullptr) {
  TempDir tmp("dcp-cli");
  const auto r = run_muspec("scan " + args + " --json " + tmp.file("s.json") + " -q");
  INFO(r.err);
  REQUIRE(r.exit_code == expected_exit);
  if (out) *out = r;
  return json::parse(muspec_test::read_text(tmp.file("s.json")))["matrices"];
}

/// ‖X‖_F of every tensor of the truth, by name.
std::map<std::string, double> truth_norms(const std::string& variant) {
  const muspec::SafetensorsFile truth(dcp_dir("expected/" + variant + ".safetensors"));
  std::map<std::string, double> out;
  for (size_t i = 0; i < truth.entries().size(); ++i) {
    const auto h = truth.load(i);
    if (h.view.rank() != 2) continue;
    const auto m = muspec::matrix_of(h.view);
    double s = 0;
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t c = 0; c < m.cols; ++c) s += muspec::element(m, r, c) * muspec::element(m, r, c);
    out[truth.entries()[i].name] = std::sqrt(s);
  }
  return out;
}

void check_norms(const json& records, const std::string& variant, size_t expected_count) {
  const auto norms = truth_norms(variant);
  size_t compared = 0;
  for (const auto& rec : records) {
    INFO(rec.dump());
    const auto it = norms.find(rec["tensor"].get<std::string>());  // the truth uses muspec's tensor names
    REQUIRE(it != norms.end());
    CHECK(rec["frobenius"].get<double>() == Approx(it->second).epsilon(1e-12));
    CHECK(rec["sharded"] == "dcp");
    ++compared;
  }
  CHECK(compared == expected_count);
}

}  // namespace

TEST_CASE("scan a torchtitan DCP step directory", "[cli][dcp]") {
  const json m = scan(dcp_dir("torchtitan/step-20") + " --kind all", 0);
  check_norms(m, "torchtitan", 8);  // 5 weight matrices + 3 momentum buffers
  std::map<std::string, json> by_tensor;
  for (const auto& r : m) by_tensor[r["tensor"]] = r;
  const json& mom = by_tensor.at("optimizer.state.layers.1.attention.wq.weight.momentum_buffer");
  CHECK(mom["kind"] == "momentum");
  CHECK(mom["parameter"] == "layers.1.attention.wq.weight");
  CHECK(mom["layer"] == 1);
  CHECK(mom["op_type"] == "q");
  CHECK(mom["step"] == 20);
  CHECK(mom["shards"] == 4);
  CHECK(by_tensor.at("layers.0.feed_forward.w1.weight")["dtype"] == "BF16");
  SECTION("--kind auto picks the momentum") {
    const json a = scan(dcp_dir("torchtitan/step-20"), 0);
    CHECK(a.size() == 3);
    for (const auto& r : a) CHECK(r["kind"] == "momentum");
  }
}

TEST_CASE("scan an accelerate FSDP checkpoint", "[cli][dcp]") {
  const json m = scan(dcp_dir("accelerate/checkpoint-10"), 0);
  check_norms(m, "accelerate", 3);  // --kind auto: exp_avg of the three matrices
  for (const auto& r : m) {
    CHECK(r["kind"] == "exp_avg");
    CHECK(r["step"] == 10);
    CHECK(r["shards"] == 2);
  }
}

TEST_CASE("scan a Megatron torch_dist checkpoint: one record per layer", "[cli][dcp]") {
  const json m = scan(dcp_dir("megatron/iter_0000100") + " --kind all", 0);
  check_norms(m, "megatron", 9);  // 2 layers x (qkv, fc2) weights and exp_avg, + the embedding
  std::set<std::pair<int64_t, std::string>> layers;
  for (const auto& r : m) {
    CHECK(r["step"] == 100);
    if (r["op_type"] == "qkv") layers.insert({r["layer"].get<int64_t>(), r["kind"].get<std::string>()});
  }
  CHECK(layers == std::set<std::pair<int64_t, std::string>>{{0, "weight"}, {1, "weight"}, {0, "exp_avg"}, {1, "exp_avg"}});
}

TEST_CASE("scan hostile DCP directories: each bad tensor named, the rest analysed, exit 1", "[cli][dcp][hostile]") {
  muspec_test::RunResult r;
  const json m = scan(dcp_dir("hostile") + " " + dcp_dir("zstd") + " --kind weights", 1, &r);
  // zstd/: 2 matrices; lying_offset, outside_file, out_of_bounds, overlap, zstd_bomb, short_length: wq each.
  CHECK(m.size() == 2 + 6);
  for (const char* dir : {"lying_offset", "outside_file", "out_of_bounds", "overlap", "zstd_bomb", "short_length", "path_escape"}) {
    INFO(dir << "\n" << r.err);
    CHECK(r.err.find(std::string("hostile/") + dir) != std::string::npos);
  }
  CHECK(r.err.find("tensor 'layers.0.attention.wo.weight'") != std::string::npos);
  CHECK(r.err.find("zstd bomb") != std::string::npos);
  CHECK(r.err.find("webbrowser.open") != std::string::npos);
}

TEST_CASE("scan Megatron dp_reshardable: weights analysed, the optimizer state refused with how to re-save", "[cli][dcp]") {
  muspec_test::RunResult r;
  const json m = scan(dcp_dir("megatron_dp_reshardable") + " --kind all", 1, &r);
  check_norms(m, "megatron_dp_reshardable", 5);
  CHECK(r.err.find("--dist-ckpt-optim-fully-reshardable") != std::string::npos);
}
