// PyTorch Distributed Checkpoint reader (io/dcp.h) on the directories written by
// tests/fixtures/make_dcp_fixtures.py: torchtitan, accelerate FSDP, Megatron torch_dist (stacked
// layers), zstd chunks, safetensors mode, torch 1.13 and 2.0-2.2 class paths, and hostile
// variants. The oracle is tests/fixtures/dcp/expected/<variant>.safetensors: the unsharded
// tensors torch held before they were cut into chunks, under the names muspec gives them.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "io/dcp.h"
#include "io/discover.h"
#include "io/safetensors.h"
#include "input_error_check.h"
#include "test_support.h"

using muspec::DcpCheckpoint;
using muspec::InputError;
using muspec::TensorView;

namespace {

std::string dcp_fixture(const std::string& rel) { return muspec_test::fixture("dcp/" + rel); }

/// Every element of a view as float64 (rank 1 or 2, any strides the reader proved in bounds).
std::vector<double> values_of(const TensorView& v) {
  REQUIRE(v.bounds_problem().empty());
  muspec::MatrixView m;
  if (v.rank() == 1) {
    m = muspec::MatrixView{v.dtype, v.byte_order, 1, v.shape[0], 0, v.strides[0], v.data};
  } else {
    REQUIRE(v.rank() == 2);
    m = muspec::matrix_of(v);
  }
  std::vector<double> out;
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j) out.push_back(muspec::element(m, i, j));
  return out;
}

long find_entry(const muspec::TensorSource& s, const std::string& name) {
  for (size_t i = 0; i < s.entries().size(); ++i)
    if (s.entries()[i].name == name) return static_cast<long>(i);
  return -1;
}

/// Each tensor of the truth is in the checkpoint under the same name, with the same shape,
/// dtype and every value equal; returns how many were compared.
size_t check_against_truth(const DcpCheckpoint& ck, const std::string& variant) {
  const muspec::SafetensorsFile truth(dcp_fixture("expected/" + variant + ".safetensors"));
  for (size_t t = 0; t < truth.entries().size(); ++t) {
    const auto& want = truth.entries()[t];
    INFO(variant << ": " << want.name);
    const long i = find_entry(ck, want.name);
    REQUIRE(i >= 0);
    const auto& got = ck.entries()[static_cast<size_t>(i)];
    CHECK(got.shape == want.shape);
    REQUIRE(got.dtype);
    CHECK(*got.dtype == *want.dtype);
    const muspec::TensorHandle h = ck.load(static_cast<size_t>(i));
    CHECK(h.view.shape == want.shape);
    CHECK(values_of(h.view) == values_of(truth.load(t).view));
  }
  return truth.entries().size();
}

}  // namespace

TEST_CASE("DCP checkpoints of every writer read back equal to the unsharded tensors", "[io][dcp]") {
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"torchtitan", "torchtitan/step-20"},          {"zstd", "zstd/step-5"},
      {"safetensors", "safetensors/step-5"},         {"v113", "v113/step-3"},
      {"v22", "v22/step-4"},                         {"megatron", "megatron/iter_0000100"},
      {"megatron_dp_reshardable", "megatron_dp_reshardable/iter_0000100"}};
  for (const auto& [truth, dir] : variants) {
    SECTION(truth) {
      const auto ck = DcpCheckpoint::open(dcp_fixture(dir + "/.metadata"));
      CHECK(check_against_truth(*ck, truth) >= 2);
      CHECK(ck->sharding().format == "dcp");
      if (truth != "megatron_dp_reshardable") CHECK(ck->unreadable().empty());
    }
  }
  SECTION("accelerate: model and optimizer directories") {
    const auto model = DcpCheckpoint::open(dcp_fixture("accelerate/checkpoint-10/pytorch_model_fsdp_0/.metadata"));
    const auto optim = DcpCheckpoint::open(dcp_fixture("accelerate/checkpoint-10/optimizer_0/.metadata"));
    CHECK(model->trainer() == "accelerate FSDP");
    // Both together hold the truth: weights under their FQN, state as optimizer.state.<fqn>.<kind>.
    const muspec::SafetensorsFile truth(dcp_fixture("expected/accelerate.safetensors"));
    size_t found = 0;
    for (const auto& e : truth.entries()) found += find_entry(*model, e.name) >= 0 || find_entry(*optim, e.name) >= 0;
    CHECK(found == truth.entries().size());
    CHECK(find_entry(*model, "model.layers.0.self_attn.q_proj.weight") >= 0);
    CHECK(find_entry(*optim, "optimizer.state.model.layers.0.self_attn.q_proj.weight.exp_avg_sq") >= 0);
    CHECK(model->sharding().shards == 2);
  }
}

TEST_CASE("DCP shard counts and layouts", "[io][dcp]") {
  const auto titan = DcpCheckpoint::open(dcp_fixture("torchtitan/step-20/.metadata"));
  CHECK(titan->sharding().shards == 4);
  CHECK(titan->trainer() == "DCP");
  // BYTE_IO items (train_state, param_groups' scalars) are not tensors.
  CHECK(find_entry(*titan, "train_state") < 0);
  CHECK(find_entry(*titan, "optimizer.state.layers.1.attention.wq.weight.momentum_buffer") >= 0);
}

TEST_CASE("Megatron torch_dist: stacked layers become one matrix per layer", "[io][dcp]") {
  const auto ck = DcpCheckpoint::open(dcp_fixture("megatron/iter_0000100/.metadata"));
  CHECK(ck->trainer() == "Megatron torch_dist");
  for (int l = 0; l < 2; ++l) {
    const std::string name = "decoder.layers." + std::to_string(l) + ".self_attention.linear_qkv.weight";
    const long i = find_entry(*ck, name);
    REQUIRE(i >= 0);
    CHECK(ck->entries()[static_cast<size_t>(i)].shape == std::vector<int64_t>{48, 16});
    CHECK(find_entry(*ck, "optimizer.state." + name + ".exp_avg") >= 0);
  }
  CHECK(find_entry(*ck, "decoder.layers.self_attention.linear_qkv.weight") < 0);  // never the stack itself
  SECTION("the fp32 master copy is listed, not analysed") {
    const long i = find_entry(*ck, "optimizer.state.decoder.layers.1.mlp.linear_fc2.weight.fp32_param");
    REQUIRE(i >= 0);
    const auto& e = ck->entries()[static_cast<size_t>(i)];
    CHECK_FALSE(e.dtype);
    CHECK(e.unsupported.find("fp32 master copy") != std::string::npos);
  }
  SECTION("dp_reshardable flat buckets: a clear refusal, the weights still read") {
    const auto dp = DcpCheckpoint::open(dcp_fixture("megatron_dp_reshardable/iter_0000100/.metadata"));
    const std::vector<muspec::UnreadableTensor> unreadable = dp->unreadable();  // a copy: unreadable() returns by value
    REQUIRE(unreadable.size() == 1);
    const auto& u = unreadable[0];
    CHECK(u.tensor.rfind("optimizer.distributed.dp_group_idx_0.", 0) == 0);
    CHECK(u.reason.find("dp_reshardable") != std::string::npos);
    CHECK(u.reason.find("cannot be reassembled") != std::string::npos);
    CHECK(u.reason.find("--dist-ckpt-optim-fully-reshardable") != std::string::npos);
    for (const auto& e : dp->entries()) CHECK(e.name.find("optimizer") == std::string::npos);
  }
}

TEST_CASE("hostile DCP checkpoints are refused with the file and tensor named", "[io][dcp][hostile]") {
  const std::string good = "layers.0.attention.wq.weight", bad = "layers.0.attention.wo.weight";
  auto open = [](const std::string& name) { return DcpCheckpoint::open(dcp_fixture("hostile/" + name + "/step-1/.metadata")); };
  auto unreadable_reason = [&](const DcpCheckpoint& ck) {
    REQUIRE(ck.unreadable().size() == 1);
    CHECK(ck.unreadable()[0].tensor == bad);
    CHECK(find_entry(ck, good) >= 0);  // the other tensor stays readable
    CHECK(find_entry(ck, bad) < 0);
    CHECK_NOTHROW(ck.load(static_cast<size_t>(find_entry(ck, good))));
    return ck.unreadable()[0].reason;
  };
  SECTION("metadata pointing outside its file") {
    const std::string why = unreadable_reason(*open("outside_file"));
    CHECK(why.find("past the end of the file") != std::string::npos);
    CHECK(why.find("__") != std::string::npos);  // names the .distcp file
  }
  SECTION("a chunk outside the tensor") {
    CHECK(unreadable_reason(*open("out_of_bounds")).find("outside") != std::string::npos);
  }
  SECTION("overlapping chunks") {
    CHECK(unreadable_reason(*open("overlap")).find("overlap") != std::string::npos);
  }
  SECTION("a byte range too short for the chunk's elements") {
    CHECK(unreadable_reason(*open("short_length")).find("cannot hold them") != std::string::npos);
  }
  SECTION("a shard file name that leaves the checkpoint directory") {
    const std::string meta = dcp_fixture("hostile/path_escape/step-1/.metadata");
    muspec_test::expect_input_error([&] { open("path_escape"); }, meta, bad, {"'..' component"});
  }
  SECTION("a lying offset: the bytes there are no torch.save archive") {
    const auto ck = open("lying_offset");
    CHECK(ck->unreadable().empty());
    const long i = find_entry(*ck, bad);
    REQUIRE(i >= 0);
    const std::string file = dcp_fixture("hostile/lying_offset/step-1/__0_0.distcp");
    muspec_test::expect_input_error([&] { ck->load(static_cast<size_t>(i)); }, file, bad, {"chunk at bytes"});
    CHECK_NOTHROW(ck->load(static_cast<size_t>(find_entry(*ck, good))));
  }
  SECTION("a zstd bomb") {
    const auto ck = open("zstd_bomb");
    const long i = find_entry(*ck, bad);
    REQUIRE(i >= 0);
    const std::string file = dcp_fixture("hostile/zstd_bomb/step-1/__0_0.distcp");
    muspec_test::expect_input_error([&] { ck->load(static_cast<size_t>(i)); }, file, bad, {"zstd bomb"});
  }
  SECTION("a global outside the allow-list") {
    const std::string meta = dcp_fixture("hostile/evil_global/step-1/.metadata");
    muspec_test::expect_input_error([&] { open("evil_global"); }, meta, "", {"webbrowser.open", "allow-list"});
  }
  SECTION("getattr on anything but DCP's memory-format enum") {
    const std::string meta = dcp_fixture("hostile/getattr_gadget/step-1/.metadata");
    muspec_test::expect_input_error([&] { open("getattr_gadget"); }, meta, "", {"getattr"});
  }
}

TEST_CASE("DCP directories in discovery", "[io][dcp]") {
  namespace fs = std::filesystem;
  SECTION("listed as their .metadata; Megatron's common.pt belongs to the checkpoint") {
    const auto found = muspec::discover_tensor_files({dcp_fixture("megatron")});
    REQUIRE(found.files.size() == 1);
    CHECK(fs::path(found.files[0]).filename() == ".metadata");
    CHECK(found.problems.empty());
  }
  SECTION("shards without .metadata are an incomplete checkpoint, said so") {
    muspec_test::TempDir tmp("dcp");
    fs::copy(dcp_fixture("zstd/step-5"), tmp.path() / "step-5");
    fs::remove(tmp.path() / "step-5" / ".metadata");
    const auto found = muspec::discover_tensor_files({tmp.path().string()});
    CHECK(found.files.empty());
    REQUIRE_FALSE(found.problems.empty());
    CHECK(found.problems[0].find("without their .metadata") != std::string::npos);
  }
}
