// torch.save files written by real PyTorch (tests/fixtures/make_torch_fixtures.py, Debian's
// python3-torch): every tensor read equals what PyTorch wrote; hostile files are refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/torch_file.h"
#include "test_support.h"

using namespace muspec;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const TensorEntry* find_entry(const TorchFile& f, const std::string& name, size_t* index) {
  for (size_t i = 0; i < f.entries().size(); ++i)
    if (f.entries()[i].name == name) { *index = i; return &f.entries()[i]; }
  return nullptr;
}

/// Logical element k (row-major over the shape) of a view, as float64.
double logical_element(const TensorView& v, int64_t k) {
  int64_t offset = 0;
  for (int d = v.rank() - 1; d >= 0; --d) {
    offset += (k % v.shape[d]) * v.strides[d];
    k /= v.shape[d];
  }
  MatrixView m;  // a 1x1 window onto that element
  m.dtype = v.dtype;
  m.byte_order = v.byte_order;
  m.rows = m.cols = 1;
  m.base = v.data + offset * (dtype_bits(v.dtype) / 8);
  return element(m, 0, 0);
}

const char* muspec_dtype_for(const std::string& torch_name) {
  static const std::pair<const char*, const char*> t[] = {
      {"float32", "F32"}, {"float64", "F64"}, {"float16", "F16"}, {"bfloat16", "BF16"}, {"int64", "I64"},
      {"int32", "I32"}, {"int16", "I16"}, {"int8", "I8"}, {"uint8", "U8"}, {"bool", "BOOL"}};
  for (const auto& [a, b] : t)
    if (torch_name == a) return b;
  return "?";
}

}  // namespace

TEST_CASE("torch: tensors in PyTorch-written files equal what PyTorch wrote", "[io][torch]") {
  int files = 0, tensors = 0;
  for (const auto& de : fs::directory_iterator(muspec_test::fixture("torch"))) {
    const std::string p = de.path().string();
    if (de.path().extension() != ".json") continue;
    const json want = json::parse(muspec_test::read_text(p));
    if (!want.contains("tensors") || !want.contains("file")) continue;
    const std::string pt = muspec_test::fixture("torch/" + want["file"].get<std::string>());
    INFO(pt);
    const auto f = TorchFile::open(pt);
    CHECK(f->format() == want.value("format", "zip"));
    ++files;
    for (const auto& t : want["tensors"]) {
      const std::string name = t["path"];
      INFO(name);
      size_t index = 0;
      const TensorEntry* e = find_entry(*f, name, &index);
      REQUIRE(e != nullptr);
      CHECK(e->dtype_label == muspec_dtype_for(t["dtype"]));
      CHECK(e->shape == t["shape"].get<std::vector<int64_t>>());
      const TensorHandle h = f->load(index);
      CHECK(h.view.strides == t["stride"].get<std::vector<int64_t>>());
      if (!t.contains("values_hex") || !dtype_is_decodable_float(h.view.dtype)) continue;
      const auto& vals = t["values_hex"];
      REQUIRE(static_cast<int64_t>(vals.size()) == h.view.numel());
      for (int64_t k = 0; k < h.view.numel(); ++k) {
        const double want_v = std::strtod(vals[static_cast<size_t>(k)].get<std::string>().c_str(), nullptr);
        const double got = logical_element(h.view, k);
        if (std::isnan(want_v)) CHECK(std::isnan(got));
        else REQUIRE(got == want_v);
      }
      ++tensors;
    }
  }
  CHECK(files >= 8);
  CHECK(tensors >= 30);
}

TEST_CASE("torch: hostile files are refused with an error naming the file, nothing crashes or hangs", "[io][torch][bad-input]") {
  // tests/fixtures/torch/hostile.json gives each file's expected error class. A "billion
  // laughs" pickle of shared lists may also load (sharing keeps it small) as long as it is fast.
  const json doc = json::parse(muspec_test::read_text(muspec_test::fixture("torch/hostile.json")));
  int hostile = 0;
  for (const auto& h : doc["files"]) {
    const std::string name = h["file"];
    const std::string expected = h["expected_error"];
    INFO(name << " (expected: " << expected << ")");
    ++hostile;
    bool refused = false;
    try {
      const auto f = TorchFile::open(muspec_test::fixture("torch/" + name));
      for (size_t i = 0; i < f->entries().size(); ++i) f->load(i);  // a bad stride/size shows here
    } catch (const InputError& e) {
      refused = true;
      CHECK_THAT(e.what(), Catch::Contains(name));
    }
    CHECK((refused || expected == "expansion_limit"));
  }
  CHECK(hostile >= 10);
}
