// The shared chunk-assembly step of the sharded readers (DCP, DeepSpeed ZeRO). Oracle: a global
// tensor held in memory whose every element is distinct; it is cut into chunks the way sharded
// writers cut tensors (rows, columns, blocks, uneven last shard, random guillotine cuts, chunks
// stored transposed), and every assembled element must equal the original one.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <memory>
#include <random>

#include "core/error.h"
#include "io/chunk_assembly.h"

using namespace muspec;

namespace {

// A float32 tensor whose element at flat index i is i + 0.5 (distinct, exact in float32 for the sizes here).
struct Global {
  std::vector<int64_t> shape;
  std::vector<float> values;
  explicit Global(std::vector<int64_t> s) : shape(std::move(s)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    values.resize(static_cast<size_t>(n));
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) + 0.5f;
  }
  float at(const std::vector<int64_t>& idx) const {
    int64_t flat = 0;
    for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + idx[d];
    return values[static_cast<size_t>(flat)];
  }
};

// Copies the box of `g` into a chunk; with `transposed` (2-D only) the chunk is stored
// column-major and exposed through strides, as a torch.save of a .t() view would be.
TensorChunk make_chunk(const Global& g, std::vector<int64_t> off, std::vector<int64_t> sz, std::string file,
                       bool transposed = false, std::atomic<int>* loads = nullptr) {
  auto data = std::make_shared<std::vector<float>>();
  std::vector<int64_t> idx(off.size());
  int64_t n = 1;
  for (int64_t s : sz) n *= s;
  data->resize(static_cast<size_t>(std::max<int64_t>(n, 1)));
  std::vector<int64_t> strides = TensorView::contiguous_strides(sz);
  if (transposed) strides = {1, sz[0]};
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t rem = flat, pos = 0;
    for (int d = static_cast<int>(sz.size()) - 1; d >= 0; --d) {
      idx[d] = rem % sz[d];
      rem /= sz[d];
    }
    std::vector<int64_t> global(idx.size());
    for (size_t d = 0; d < idx.size(); ++d) global[d] = off[d] + idx[d], pos += idx[d] * strides[d];
    (*data)[static_cast<size_t>(pos)] = g.at(global);
  }
  TensorChunk c;
  c.offsets = off;
  c.sizes = sz;
  c.file = file;
  c.load = [data, sz, strides, loads]() {
    if (loads) ++*loads;
    TensorHandle h;
    h.view.dtype = DType::F32;
    h.view.shape = sz;
    h.view.strides = strides;
    h.view.data = reinterpret_cast<const uint8_t*>(data->data());
    h.view.reachable_bytes = data->size() * sizeof(float);
    h.keepalive = data;
    return h;
  };
  return c;
}

// Every element of the assembled region equals the global tensor's.
void require_region_equal(const Global& g, const TensorHandle& h, const TensorRegion& r) {
  REQUIRE(h.view.shape == r.sizes);
  REQUIRE(h.view.dtype == DType::F32);
  REQUIRE(h.view.bounds_problem().empty());
  int64_t n = 1;
  for (int64_t s : r.sizes) n *= s;
  const float* out = reinterpret_cast<const float*>(h.view.data);
  std::vector<int64_t> idx(r.sizes.size());
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t rem = flat;
    for (int d = static_cast<int>(r.sizes.size()) - 1; d >= 0; --d) {
      idx[d] = r.offsets[d] + rem % r.sizes[d];
      rem /= r.sizes[d];
    }
    if (out[flat] != g.at(idx)) FAIL("element " << flat << " differs: " << out[flat] << " vs " << g.at(idx));
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Random guillotine partition of the box into at least `pieces` boxes.
void cut(const std::vector<int64_t>& off, const std::vector<int64_t>& sz, int depth, std::mt19937& rng,
         std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>& out) {
  std::vector<size_t> cuttable;
  for (size_t d = 0; d < sz.size(); ++d)
    if (sz[d] > 1) cuttable.push_back(d);
  if (depth == 0 || cuttable.empty()) {
    out.emplace_back(off, sz);
    return;
  }
  const size_t d = cuttable[rng() % cuttable.size()];
  const int64_t at = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(sz[d] - 1));
  auto off2 = off, sz1 = sz, sz2 = sz;
  sz1[d] = at;
  off2[d] += at;
  sz2[d] -= at;
  cut(off, sz1, depth - 1, rng, out);
  cut(off2, sz2, depth - 1, rng, out);
}

}  // namespace

TEST_CASE("row-, column- and block-sharded matrices reassemble exactly, uneven last shard included", "[chunk_assembly]") {
  const Global g({10, 7});
  std::vector<TensorChunk> rows = {make_chunk(g, {0, 0}, {4, 7}, "__0_0.distcp"), make_chunk(g, {4, 0}, {4, 7}, "__1_0.distcp"),
                                   make_chunk(g, {8, 0}, {2, 7}, "__2_0.distcp")};
  std::vector<TensorChunk> cols = {make_chunk(g, {0, 0}, {10, 3}, "a"), make_chunk(g, {0, 3}, {10, 3}, "b"),
                                   make_chunk(g, {0, 6}, {10, 1}, "c")};
  std::vector<TensorChunk> blocks = {make_chunk(g, {0, 0}, {5, 4}, "a"), make_chunk(g, {0, 4}, {5, 3}, "b", true),
                                     make_chunk(g, {5, 0}, {5, 4}, "c", true), make_chunk(g, {5, 4}, {5, 3}, "d")};
  for (const auto* chunks : {&rows, &cols, &blocks}) {
    REQUIRE_NOTHROW(check_chunk_coverage("w", g.shape, *chunks));
    const TensorRegion whole = TensorRegion::whole(g.shape);
    require_region_equal(g, assemble_region("w", g.shape, DType::F32, *chunks, whole), whole);
    const TensorRegion part{{3, 2}, {5, 4}};  // crosses every shard boundary
    require_region_equal(g, assemble_region("w", g.shape, DType::F32, *chunks, part), part);
  }
}

TEST_CASE("one layer of a stacked [L, out, in] tensor loads only the chunks that hold it", "[chunk_assembly]") {
  const Global g({4, 6, 5});
  std::atomic<int> loads{0};
  std::vector<TensorChunk> chunks;
  for (int64_t l = 0; l < 4; ++l)  // each layer split in two row halves, as a TP=2 torch_dist save would
    for (int64_t h = 0; h < 2; ++h)
      chunks.push_back(make_chunk(g, {l, 3 * h, 0}, {1, 3, 5}, "__" + std::to_string(h) + "_0.distcp", false, &loads));
  check_chunk_coverage("decoder.layers.linear_qkv.weight", g.shape, chunks);
  for (int64_t l = 0; l < 4; ++l) {
    loads = 0;
    const TensorRegion r = TensorRegion::leading_slice(g.shape, l);
    require_region_equal(g, assemble_region("x", g.shape, DType::F32, chunks, r), r);
    CHECK(loads == 2);
  }
}

TEST_CASE("random guillotine partitions of 1-D, 2-D and 3-D tensors reassemble exactly", "[chunk_assembly]") {
  std::mt19937 rng(20261206);
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{97}, std::vector<int64_t>{13, 11}, std::vector<int64_t>{5, 6, 7}}) {
    const Global g(shape);
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> boxes;
      cut(std::vector<int64_t>(shape.size(), 0), shape, 4, rng, boxes);
      std::vector<TensorChunk> chunks;
      for (size_t i = 0; i < boxes.size(); ++i)
        chunks.push_back(make_chunk(g, boxes[i].first, boxes[i].second, "f" + std::to_string(i),
                                    shape.size() == 2 && i % 2 == 1));
      std::shuffle(chunks.begin(), chunks.end(), rng);
      REQUIRE_NOTHROW(check_chunk_coverage("t", shape, chunks));
      TensorRegion r = TensorRegion::whole(shape);
      for (size_t d = 0; d < shape.size(); ++d) {
        r.offsets[d] = static_cast<int64_t>(rng() % static_cast<uint64_t>(shape[d]));
        r.sizes[d] = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(shape[d] - r.offsets[d]));
      }
      require_region_equal(g, assemble_region("t", shape, DType::F32, chunks, r), r);
    }
  }
}

TEST_CASE("coverage errors name the tensor, the files and what is wrong", "[chunk_assembly]") {
  const Global g({8, 4});
  const auto check = [&](std::vector<TensorChunk> chunks) { return error_of([&] { check_chunk_coverage("model.w", g.shape, chunks); }); };
  const std::string gap = check({make_chunk(g, {0, 0}, {4, 4}, "__0_0.distcp"), make_chunk(g, {5, 0}, {3, 4}, "__1_0.distcp")});
  CHECK_THAT(gap, Catch::Contains("model.w") && Catch::Contains("4 of 32") && Catch::Contains("__1_0.distcp"));
  const std::string overlap = check({make_chunk(g, {0, 0}, {5, 4}, "__0_0.distcp"), make_chunk(g, {4, 0}, {4, 4}, "__1_0.distcp")});
  CHECK_THAT(overlap, Catch::Contains("overlap") && Catch::Contains("__0_0.distcp") && Catch::Contains("__1_0.distcp"));
  // Same element count as the tensor, but one row twice and one row missing.
  const std::string both = check({make_chunk(g, {0, 0}, {4, 4}, "a"), make_chunk(g, {3, 0}, {4, 4}, "b")});
  CHECK_THAT(both, Catch::Contains("overlap"));
  TensorChunk outside = make_chunk(g, {0, 0}, {8, 4}, "c");
  outside.offsets = {1, 0};
  CHECK_THAT(check({outside}), Catch::Contains("outside the tensor"));
  TensorChunk wrong_rank = make_chunk(g, {0, 0}, {8, 4}, "d");
  wrong_rank.offsets = {0};
  CHECK_THAT(check({wrong_rank}), Catch::Contains("rank"));
  TensorChunk negative = make_chunk(g, {0, 0}, {8, 4}, "e");
  negative.offsets = {-1, 0};
  CHECK_THAT(check({negative}), Catch::Contains("negative"));
  TensorChunk huge = make_chunk(g, {0, 0}, {8, 4}, "f");
  huge.offsets = {INT64_MAX, 0};
  CHECK_THAT(check({huge}), Catch::Contains("outside"));
  CHECK_THAT(check({}), Catch::Contains("32 of 32"));
}

TEST_CASE("a chunk that does not hold what the metadata declares is refused at load", "[chunk_assembly]") {
  const Global g({6, 4});
  std::vector<TensorChunk> chunks = {make_chunk(g, {0, 0}, {3, 4}, "__0_0.distcp"), make_chunk(g, {3, 0}, {3, 4}, "__1_0.distcp")};
  check_chunk_coverage("w", g.shape, chunks);
  const TensorRegion whole = TensorRegion::whole(g.shape);
  SECTION("shape") {
    chunks[1].sizes = {3, 4};
    auto inner = chunks[1].load;
    chunks[1].load = [inner] { TensorHandle h = inner(); h.view.shape = {4, 3}; h.view.strides = {3, 1}; return h; };
    CHECK_THAT(error_of([&] { assemble_region("w", g.shape, DType::F32, chunks, whole); }),
               Catch::Contains("__1_0.distcp") && Catch::Contains("[4, 3]"));
  }
  SECTION("dtype") {
    auto inner = chunks[0].load;
    chunks[0].load = [inner] { TensorHandle h = inner(); h.view.dtype = DType::BF16; return h; };
    CHECK_THAT(error_of([&] { assemble_region("w", g.shape, DType::F32, chunks, whole); }), Catch::Contains("BF16"));
  }
  SECTION("bytes beyond the stored span") {
    auto inner = chunks[0].load;
    chunks[0].load = [inner] { TensorHandle h = inner(); h.view.reachable_bytes -= 4; return h; };
    CHECK_THAT(error_of([&] { assemble_region("w", g.shape, DType::F32, chunks, whole); }), Catch::Contains("bytes"));
  }
  SECTION("byte order") {
    auto inner = chunks[1].load;
    chunks[1].load = [inner] { TensorHandle h = inner(); h.view.byte_order = ByteOrder::Big; return h; };
    CHECK_THAT(error_of([&] { assemble_region("w", g.shape, DType::F32, chunks, whole); }), Catch::Contains("byte order"));
  }
}

TEST_CASE("scalars and empty tensors assemble", "[chunk_assembly]") {
  const Global g(std::vector<int64_t>{});
  std::vector<TensorChunk> one = {make_chunk(g, {}, {}, "s")};
  check_chunk_coverage("step", {}, one);
  TensorHandle h = assemble_region("step", {}, DType::F32, one, TensorRegion::whole({}));
  CHECK(*reinterpret_cast<const float*>(h.view.data) == 0.5f);
  std::vector<TensorChunk> twice = {make_chunk(g, {}, {}, "s"), make_chunk(g, {}, {}, "t")};
  CHECK_THAT(error_of([&] { check_chunk_coverage("step", {}, twice); }), Catch::Contains("same scalar"));
  const Global e({0, 5});
  REQUIRE_NOTHROW(check_chunk_coverage("e", e.shape, {}));
  CHECK(assemble_region("e", e.shape, DType::F32, {}, TensorRegion::whole(e.shape)).view.numel() == 0);
}
