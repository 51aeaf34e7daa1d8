// DeepSpeed ZeRO checkpoints (tests/fixtures/make_deepspeed_fixtures.py, DeepSpeed's layouts
// written by real torch.save): every reassembled value equals the live tensor the script
// saved (truth/<fixture>.pt); hostile variants fail with an InputError naming the file at
// fault and the tensor; the layout arithmetic on hand-made lengths.
#include <catch2/catch.hpp>

#include <Eigen/SVD>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "input_error_check.h"
#include "io/deepspeed.h"
#include "io/deepspeed_layout.h"
#include "io/discover.h"
#include "io/pickle.h"
#include "io/torch_file.h"
#include "test_support.h"

using muspec_test::expect_input_error;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string ds_fixture(const std::string& name) { return muspec_test::fixture("deepspeed/" + name); }

const char* const kFixtures[] = {"zero2_adamw_w3", "zero1_muon_bf16_w4", "zero1_elastic_w4", "bf16_optimizer_w2",
                                 "zero3_muon_w2",  "zero3_adamw_bf16_w3", "hf_trainer_zero2_w2"};

std::string checkpoint_dir(const std::string& fixture) {
  return ds_fixture(fixture == std::string("hf_trainer_zero2_w2") ? fixture + "/run/checkpoint-4" : fixture);
}

/// The live tensors of a fixture: name -> (shape, float values).
struct Truth {
  json meta;
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> tensors;
};

Truth read_truth(const std::string& fixture) {
  Truth t;
  t.meta = json::parse(muspec_test::read_text(ds_fixture("truth/" + fixture + ".json")));
  auto file = muspec::TorchFile::open(ds_fixture("truth/" + fixture + ".pt"));
  REQUIRE(file->entries().size() == 1);
  const muspec::TensorHandle h = file->load(0);
  REQUIRE(h.view.dtype == muspec::DType::F32);
  REQUIRE(h.view.strides == std::vector<int64_t>{1});
  const auto* values = reinterpret_cast<const float*>(h.view.data);
  for (const auto& x : t.meta["tensors"]) {
    const auto shape = x["shape"].get<std::vector<int64_t>>();
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const auto at = x["offset"].get<int64_t>();
    t.tensors[x["name"].get<std::string>()] = {shape, std::vector<float>(values + at, values + at + n)};
  }
  return t;
}

std::vector<float> values_of(const muspec::TensorHandle& h) {
  REQUIRE(h.view.dtype == muspec::DType::F32);
  REQUIRE(h.view.strides == muspec::TensorView::contiguous_strides(h.view.shape));
  std::vector<float> v(static_cast<size_t>(h.view.numel()));
  std::memcpy(v.data(), h.view.data, v.size() * sizeof(float));
  return v;
}

size_t entry_index(const muspec::TensorSource& s, const std::string& name) {
  for (size_t i = 0; i < s.entries().size(); ++i)
    if (s.entries()[i].name == name) return i;
  FAIL("no entry " << name);
  return 0;
}

std::string tag_file(const std::string& fixture, const std::string& file) {
  return ds_fixture("hostile/" + fixture + "/global_step" + (fixture.rfind("zero3", 0) == 0 ? "10/" : "4/") + file);
}

}  // namespace

TEST_CASE("deepspeed: every ZeRO-1/2/3 tensor equals the live tensor torch saved", "[io][deepspeed]") {
  for (const char* fixture : kFixtures) {
    INFO(fixture);
    const Truth truth = read_truth(fixture);
    const auto source = muspec::open_deepspeed_checkpoint(checkpoint_dir(fixture));
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < source->entries().size(); ++i) {
      const auto& e = source->entries()[i];
      INFO(e.name);
      ++seen[e.name];
      REQUIRE(truth.tensors.count(e.name) == 1);
      CHECK(e.shape == truth.tensors.at(e.name).first);
      CHECK(e.dtype == muspec::DType::F32);
      const muspec::TensorHandle h = source->load(i);
      CHECK(h.view.shape == e.shape);
      CHECK(values_of(h) == truth.tensors.at(e.name).second);  // bit for bit: no arithmetic, only placement
    }
    CHECK(seen.size() == truth.tensors.size());  // every weight and state, none twice
    for (const auto& [name, n] : seen) CHECK(n == 1);
  }
}

TEST_CASE("deepspeed: the checkpoint opens from its tag directory, its model-states file or the directory with latest", "[io][deepspeed]") {
  const std::string run = ds_fixture("zero3_muon_w2");
  const auto by_latest = muspec::open_deepspeed_checkpoint(run);
  const auto by_tag = muspec::open_deepspeed_checkpoint(run + "/global_step10");
  const std::string model = run + "/global_step10/zero_pp_rank_0_mp_rank_00_model_states.pt";
  CHECK(muspec::is_deepspeed_checkpoint_file(model));
  CHECK_FALSE(muspec::is_deepspeed_checkpoint_file(run + "/global_step10/zero_pp_rank_1_mp_rank_00_model_states.pt"));
  CHECK_FALSE(muspec::is_deepspeed_checkpoint_file(muspec_test::fixture("layouts/plain_sgd/pytorch_model.bin")));
  const auto by_file = muspec::open_deepspeed_checkpoint(model);
  CHECK(by_latest->path() == model);
  CHECK(by_tag->entries().size() == by_latest->entries().size());
  CHECK(by_file->entries().size() == by_latest->entries().size());
  CHECK(by_latest->sharding().format == "deepspeed-zero3");
  CHECK(by_latest->sharding().shards == 2);
  CHECK(muspec::open_deepspeed_checkpoint(ds_fixture("bf16_optimizer_w2"))->sharding().format == "deepspeed-bf16");
  CHECK(muspec::open_deepspeed_checkpoint(ds_fixture("zero2_adamw_w3"))->sharding().format == "deepspeed-zero2");
}

TEST_CASE("deepspeed: discovery reads each tag directory as one checkpoint", "[io][deepspeed]") {
  const auto found = muspec::discover_tensor_files({ds_fixture("zero1_muon_bf16_w4"), ds_fixture("zero3_adamw_bf16_w3")});
  CHECK(found.problems.empty());
  REQUIRE(found.files.size() == 2);
  CHECK(fs::path(found.files[0]).filename() == "mp_rank_00_model_states.pt");
  CHECK(fs::path(found.files[1]).filename() == "zero_pp_rank_0_mp_rank_00_model_states.pt");
  const auto dangling = muspec::discover_tensor_files({ds_fixture("hostile/dangling_latest")});
  bool named = false;
  for (const auto& p : dangling.problems) named |= p.find("global_step99") != std::string::npos;
  CHECK(named);
}

TEST_CASE("deepspeed: hostile checkpoints fail naming the file at fault and the tensor", "[io][deepspeed][bad-input]") {
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  SECTION("a middle rank's partition cut short") {
    const auto s = muspec::open_deepspeed_checkpoint(ds_fixture("hostile/short_partition"));
    expect_input_error([&] { s->load(entry_index(*s, q)); }, tag_file("short_partition", "zero_pp_rank_1_mp_rank_00_optim_states.pt"), q,
                       {"cut short", "rank 1"});
    CHECK_NOTHROW(s->load(entry_index(*s, "model.norm.weight")));  // another param group is intact
  }
  SECTION("the last rank's exp_avg shorter than the layout needs") {
    const auto s = muspec::open_deepspeed_checkpoint(ds_fixture("hostile/short_last_state"));
    const std::string name = "optimizer.state." + q + ".exp_avg";
    expect_input_error([&] { s->load(entry_index(*s, name)); }, tag_file("short_last_state", "zero_pp_rank_2_mp_rank_00_optim_states.pt"),
                       name, {"exp_avg", "partitions hold"});
    CHECK_NOTHROW(s->load(entry_index(*s, q)));
  }
  SECTION("param_shapes lying about a shape") {
    const auto s = muspec::open_deepspeed_checkpoint(ds_fixture("hostile/lying_shapes"));
    expect_input_error([&] { s->load(entry_index(*s, q)); }, tag_file("lying_shapes", "mp_rank_00_model_states.pt"), q,
                       {"param_shapes account for", "fp32 master weights"});
  }
  SECTION("a rank's file missing") {
    expect_input_error([&] { muspec::open_deepspeed_checkpoint(ds_fixture("hostile/missing_rank")); },
                       tag_file("missing_rank", "zero_pp_rank_2_mp_rank_00_optim_states.pt"), "", {"missing", "partition_count says 3"});
  }
  SECTION("ZeRO-3: a rank's flat group cut short") {
    const auto s = muspec::open_deepspeed_checkpoint(ds_fixture("hostile/zero3_short_partition"));
    expect_input_error([&] { s->load(entry_index(*s, q)); }, tag_file("zero3_short_partition", "zero_pp_rank_1_mp_rank_00_optim_states.pt"),
                       q, {"ZeRO-3", "rank 1"});
  }
  SECTION("latest naming a tag that does not exist") {
    const std::string latest = ds_fixture("hostile/dangling_latest/latest");
    expect_input_error([&] { muspec::open_deepspeed_checkpoint(ds_fixture("hostile/dangling_latest")); }, latest, "", {"global_step99"});
    CHECK_THAT(muspec::deepspeed_latest_problem(latest), Catch::Contains("global_step99"));
  }
}

TEST_CASE("deepspeed: Python 3.11's getattr(ZeroStageEnum, NAME) is read as inert data", "[io][deepspeed][pickle]") {
  // pickle.dumps(ZeroStageEnum.gradients, protocol=2) under Python 3.11
  static const char raw[] =
      "\x80\x02" "c__builtin__\ngetattr\nq\x00" "cdeepspeed.runtime.zero.config\nZeroStageEnum\nq\x01"
      "X\x09\x00\x00\x00gradientsq\x02\x86q\x03Rq\x04.";
  const std::string bytes(raw, sizeof raw - 1);  // holds NUL bytes
  const auto v = muspec::pickle::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  REQUIRE(v->kind == muspec::pickle::Kind::Object);
  CHECK(v->name == "getattr");
  REQUIRE(v->args->items.size() == 2);
  CHECK(v->args->items[0]->qualified_name() == "deepspeed.runtime.zero.config.ZeroStageEnum");
  CHECK(v->args->items[1]->text == "gradients");
}

TEST_CASE("deepspeed layout: ZeRO-1/2 partitions, padding and Muon's whole-tensor momentum", "[io][deepspeed]") {
  using namespace muspec::deepspeed;
  // Two params of 5 and 7 elements over 3 ranks: 12 elements, aligned to 6 -> partitions of 4.
  const std::vector<ParamShape> params = {{"a", {5}, 5, 0}, {"b", {7}, 7, 0}};
  SECTION("padded and unpadded partitions place the same elements") {
    // 5 + 6 = 11 elements over 3 ranks: padded to 12, partitions of 4; unpadded 4, 4, 3.
    const std::vector<ParamShape> eleven = {{"a", {5}, 5, 0}, {"c", {6}, 6, 0}};
    const auto padded = plan_zero12(eleven, {{4}, {4}, {4}}, 3), lean = plan_zero12(eleven, {{4}, {4}, {3}}, 3);
    for (size_t i = 0; i < 2; ++i) {
      REQUIRE(padded[i].problem.empty());
      REQUIRE(lean[i].problem.empty());
      REQUIRE(padded[i].pieces.size() == lean[i].pieces.size());
      for (size_t k = 0; k < padded[i].pieces.size(); ++k) {
        CHECK(padded[i].pieces[k].rank == lean[i].pieces[k].rank);
        CHECK(padded[i].pieces[k].start == lean[i].pieces[k].start);
        CHECK(padded[i].pieces[k].length == lean[i].pieces[k].length);
      }
    }
    CHECK(lean[1].pieces.back().length == 3);  // c ends with rank 2's 3 elements
    const auto plans = plan_zero12(params, {{4}, {4}, {4}}, 3);
    REQUIRE(plans[1].pieces.size() == 2);  // b = rank 1 [1, 4) + rank 2 [0, 4)
    CHECK(plans[1].pieces[0].rank == 1);
    CHECK(plans[1].pieces[0].start == 1);
    CHECK(plans[1].pieces[0].length == 3);
    CHECK(plans[1].pieces[1].at == 3);
  }
  SECTION("a short partition before a full one, or a total param_shapes cannot account for") {
    CHECK_THAT(plan_zero12(params, {{4}, {3}, {4}}, 3)[0].problem, Catch::Contains("cut short"));
    CHECK(plan_zero12(params, {{4}, {3}, {4}}, 3)[0].blame_rank == 1);
    CHECK(plan_zero12(params, {{4}, {4}, {2}}, 3)[1].blame_rank == 2);        // 10 < 12
    CHECK(plan_zero12(params, {{8}, {8}, {8}}, 3)[1].blame_rank == -1);       // 24: far more than alignment explains
    CHECK_FALSE(plan_zero12(params, {{4}, {4}, {kAbsent}}, 3)[0].problem.empty());
  }
  SECTION("Muon momentum: each rank holds the whole parameters overlapping its partition") {
    // a [0, 5) overlaps ranks 0, 1; b [5, 12) overlaps ranks 1, 2. Buffers: r0 = a, r1 = a b, r2 = b.
    const auto plans = plan_zero12_momentum(params, {{5}, {12}, {7}}, {{4}, {4}, {4}}, 3);
    REQUIRE(plans[0].problem.empty());
    REQUIRE(plans[1].problem.empty());
    CHECK(plans[0].pieces[0].rank == 0);
    CHECK(plans[1].pieces[0].rank == 1);
    CHECK(plans[1].pieces[0].start == 5);
    CHECK(plans[1].pieces[0].length == 7);
    CHECK(plan_zero12_momentum(params, {{5}, {11}, {7}}, {{4}, {4}, {4}}, 3)[1].blame_rank == 1);
  }
}

TEST_CASE("deepspeed layout: ZeRO-3 slices of ceil(numel/world) with the padding at the end", "[io][deepspeed]") {
  using namespace muspec::deepspeed;
  // 5 and 3 elements over 2 ranks: slices of 3 (+1 padding) and 2 (+1): each rank holds 5.
  const std::vector<ParamShape> params = {{"a", {5}, 5, 0}, {"b", {3}, 3, 0}};
  const FlatLengths w = {{3, 2}, {3, 2}};
  const auto plans = plan_zero3(params, w, w, 2);
  REQUIRE(plans[1].problem.empty());
  REQUIRE(plans[1].pieces.size() == 2);
  CHECK(plans[1].pieces[0].group == 1);
  CHECK(plans[1].pieces[1].rank == 1);
  CHECK(plans[1].pieces[1].length == 1);  // b's last element; the rest of rank 1's slice is padding
  CHECK(plans[0].pieces[1].length == 2);
  CHECK(zero3_first_group(params, w, 2) == std::vector<int64_t>{0, 1});
  CHECK(plan_zero3(params, {{3, 2}, {3, 1}}, {{3, 2}, {3, 1}}, 2)[0].blame_rank == 1);
  CHECK_THAT(plan_zero3(params, w, {{3, kAbsent}, {3, 2}}, 2)[1].problem, Catch::Contains("no such state"));
}

// ------------------------------------------------------------------ muspec scan, end to end

namespace {

json scan_json(const std::string& args, int want_exit = 0, muspec_test::RunResult* out = nullptr) {
  muspec_test::TempDir tmp("deepspeed");
  const auto r = muspec_test::run_muspec("scan " + args + " --json " + tmp.file("s.json") + " -q");
  INFO(r.err);
  REQUIRE(r.exit_code == want_exit);
  if (out) *out = r;
  return json::parse(muspec_test::read_text(tmp.file("s.json")))["matrices"];
}

/// The largest singular value of a truth matrix (rows x cols, row-major floats), in float64.
double sigma_max(const std::vector<int64_t>& shape, const std::vector<float>& v) {
  Eigen::MatrixXd m(shape[0], shape[1]);
  for (int64_t i = 0; i < shape[0]; ++i)
    for (int64_t j = 0; j < shape[1]; ++j) m(i, j) = v[static_cast<size_t>(i * shape[1] + j)];
  return Eigen::JacobiSVD<Eigen::MatrixXd>(m).singularValues()(0);
}

}  // namespace

TEST_CASE("deepspeed: muspec scan on a ZeRO run directory labels Muon momentum like any other record", "[cli][deepspeed]") {
  const Truth truth = read_truth("zero1_muon_bf16_w4");
  const json m = scan_json(ds_fixture("zero1_muon_bf16_w4"));  // --kind auto: momentum, as Muon keeps it
  size_t muon_matrices = 0;
  for (const auto& [name, t] : truth.tensors)
    muon_matrices += name.size() > 16 && name.compare(name.size() - 16, 16, ".momentum_buffer") == 0 && t.first.size() == 2;
  REQUIRE(muon_matrices == 14);
  CHECK(m.size() == muon_matrices);
  for (const auto& x : m) {
    INFO(x.dump());
    CHECK(x["kind"] == "momentum");
    CHECK(x["run"] == "zero1_muon_bf16_w4");
    CHECK(x["step"] == 6);
    CHECK(x["sharded"] == "deepspeed-zero1");
    CHECK(x["shards"] == 4);
    CHECK(x["model_params"] == truth.meta["model_params"]);
    const std::string param = x["parameter"];
    const std::string tensor = "optimizer.state." + param + ".momentum_buffer";
    CHECK(x["tensor"] == tensor);
    REQUIRE(truth.tensors.count(tensor) == 1);
    CHECK(x["layer"] == (param.find("layers.1.") != std::string::npos ? 1 : 0));
    const auto& [shape, values] = truth.tensors.at(tensor);
    CHECK(x["sigma_max"].get<double>() == Approx(sigma_max(shape, values)).epsilon(1e-9));
  }
}

TEST_CASE("deepspeed: muspec scan --kind all on ZeRO-3 gives weights, exp_avg and exp_avg_sq of every matrix", "[cli][deepspeed]") {
  const json m = scan_json(ds_fixture("zero3_adamw_bf16_w3") + " --kind all");
  std::map<std::string, int> kinds;
  for (const auto& x : m) {
    ++kinds[x["kind"].get<std::string>()];
    CHECK(x["sharded"] == "deepspeed-zero3");
    CHECK(x["shards"] == 3);
    CHECK(x["step"] == 12);
  }
  CHECK(kinds == std::map<std::string, int>{{"weight", 16}, {"exp_avg", 16}, {"exp_avg_sq", 16}});
}

TEST_CASE("deepspeed: HF Trainer's checkpoint-N/global_stepN is one step of the run", "[cli][deepspeed]") {
  // checkpoint-4/ also holds config.json, trainer_state.json and a bf16 model.safetensors of the
  // same parameters: one step, the model counted once, the layers from config.json.
  const Truth truth = read_truth("hf_trainer_zero2_w2");
  const json m = scan_json(ds_fixture("hf_trainer_zero2_w2/run"));
  REQUIRE(m.size() == 14);
  for (const auto& x : m) {
    CHECK(x["run"] == "run");
    CHECK(x["step"] == 4);
    CHECK(x["kind"] == "momentum");
    CHECK(x["model_params"] == truth.meta["model_params"]);
    CHECK(x["num_layers"] == 2);
  }
  std::map<std::string, int> weights;  // the fp32 master from the partitions, the bf16 copy from model.safetensors
  const json w = scan_json(ds_fixture("hf_trainer_zero2_w2/run") + " --kind weights");
  for (const auto& x : w) ++weights[x["sharded"].get<std::string>() + x["dtype"].get<std::string>()];
  CHECK(weights == std::map<std::string, int>{{"deepspeed-zero2F32", 16}, {"BF16", 16}});
}

TEST_CASE("deepspeed: muspec scan names the partition file that is cut short and goes on", "[cli][deepspeed][bad-input]") {
  muspec_test::RunResult r;
  const json m = scan_json(ds_fixture("hostile/short_partition") + " --kind all", 1, &r);
  CHECK_THAT(r.err, Catch::Contains("zero_pp_rank_1_mp_rank_00_optim_states.pt"));
  CHECK_THAT(r.err, Catch::Contains("cut short"));
  std::map<std::string, int> kinds;  // the fp32 partitions are broken, Adam's state is intact
  for (const auto& x : m) ++kinds[x["kind"].get<std::string>()];
  CHECK(kinds == std::map<std::string, int>{{"exp_avg", 16}, {"exp_avg_sq", 16}});
}
