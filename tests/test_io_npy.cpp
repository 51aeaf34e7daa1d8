// .npy and .npz readers against files written by real numpy (tests/fixtures/numpy/, made by
// tests/fixtures/make_numpy_fixtures.py; expected.json holds numpy's own values), and against
// malformed files.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/npy.h"
#include "io/npz.h"
#include "io/tensor_source.h"
#include "input_error_check.h"
#include "test_support.h"

using muspec::InputError;
using muspec_test::fixture;
using muspec_test::read_text;
using muspec_test::TempDir;
using muspec_test::write_bytes;

namespace {

const nlohmann::json& expected() {
  static const nlohmann::json j = nlohmann::json::parse(read_text(fixture("numpy/expected.json")));
  return j;
}

/// Byte offsets of every element in C (row-major) index order.
std::vector<uint64_t> c_order_offsets(const muspec::TensorView& v) {
  const uint64_t item = static_cast<uint64_t>(muspec::dtype_bits(v.dtype) / 8);
  std::vector<uint64_t> out;
  std::vector<int64_t> idx(v.shape.size(), 0);
  for (int64_t n = 0; n < v.numel(); ++n) {
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * v.strides[d];
    out.push_back(static_cast<uint64_t>(off) * item);
    for (size_t d = idx.size(); d-- > 0;) {
      if (++idx[d] < v.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

std::vector<double> float_values(const muspec::TensorView& v) {
  std::vector<double> out;
  for (uint64_t off : c_order_offsets(v)) {
    muspec::MatrixView one;  // a 1x1 matrix at the element: element() decodes it
    one.dtype = v.dtype;
    one.byte_order = v.byte_order;
    one.rows = one.cols = 1;
    one.base = v.data + off;
    out.push_back(muspec::element(one, 0, 0));
  }
  return out;
}

std::vector<int64_t> int_values(const muspec::TensorView& v) {
  const int bytes = muspec::dtype_bits(v.dtype) / 8;
  std::vector<int64_t> out;
  for (uint64_t off : c_order_offsets(v)) {
    uint8_t b[8] = {};
    std::memcpy(b, v.data + off, bytes);
    if (v.byte_order == muspec::ByteOrder::Big) std::reverse(b, b + bytes);
    uint64_t u = 0;
    for (int i = bytes; i-- > 0;) u = (u << 8) | b[i];
    const int shift = 64 - 8 * bytes;  // sign-extend
    out.push_back(static_cast<int64_t>(u << shift) >> shift);
  }
  return out;
}

/// Checks one loaded tensor against its expected.json record.
void check_tensor(const muspec::TensorSource& src, size_t i, const nlohmann::json& rec) {
  const muspec::TensorEntry& e = src.entries()[i];
  INFO(src.path() << " tensor " << e.name);
  CHECK(e.dtype_label == rec["descr"].get<std::string>());
  CHECK(e.shape == rec["shape"].get<std::vector<int64_t>>());
  const muspec::TensorHandle h = src.load(i);
  CHECK(h.keepalive != nullptr);
  CHECK(h.view.bounds_problem().empty());
  if (rec.contains("values_hex")) {
    std::vector<double> want;
    for (const auto& s : rec["values_hex"]) want.push_back(std::strtod(s.get<std::string>().c_str(), nullptr));
    const std::vector<double> got = float_values(h.view);
    REQUIRE(got.size() == want.size());
    for (size_t k = 0; k < got.size(); ++k) {
      INFO("element " << k);
      CHECK(std::memcmp(&got[k], &want[k], sizeof(double)) == 0);  // bit-exact, -0.0 included
    }
  } else {
    CHECK(int_values(h.view) == rec["values_int"].get<std::vector<int64_t>>());
  }
}

template <typename Fn>
void expect_error(Fn fn, const std::string& file, const std::string& tensor,
                  std::initializer_list<const char*> parts) {
  muspec_test::expect_input_error(fn, file, tensor, parts);
}

/// An .npy image with the given header dict text (padded like numpy: to 64 bytes, '\n' last).
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  const size_t pre = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((pre + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  for (size_t i = 0; i < pre - 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

}  // namespace

TEST_CASE("npy: every numpy-written fixture decodes to numpy's values", "[io][npy]") {
  for (const char* file : {"f32_2d", "f64_2d", "f16_2d", "be_f4", "fortran_f8", "cube_f4", "ints_i4",
                           "scalar_f8", "v2_f4", "v3_f4"}) {
    const std::string path = fixture(std::string("numpy/") + file + ".npy");
    const auto src = muspec::open_tensor_file(path);
    REQUIRE(src->entries().size() == 1);
    CHECK(src->entries()[0].name == file);
    CHECK(src->entries()[0].file == path);
    check_tensor(*src, 0, expected()[std::string(file) + ".npy"][file]);
  }
}

TEST_CASE("npy: layout details", "[io][npy]") {
  const auto fortran = muspec::open_npy(fixture("numpy/fortran_f8.npy"));
  const auto fv = fortran->load(0).view;
  CHECK(fv.strides == std::vector<int64_t>{1, 3});  // column-major, viewed in place
  const auto be = muspec::open_npy(fixture("numpy/be_f4.npy"));
  CHECK(be->load(0).view.byte_order == muspec::ByteOrder::Big);
  CHECK(be->entries()[0].dtype == muspec::DType::F32);
  const auto scalar = muspec::open_npy(fixture("numpy/scalar_f8.npy"));
  CHECK(scalar->entries()[0].shape.empty());
  CHECK(scalar->entries()[0].nbytes == 8);
}

TEST_CASE("npy: object arrays are listed but never unpickled", "[io][npy]") {
  const std::string path = fixture("numpy/object.npy");
  const auto src = muspec::open_tensor_file(path);
  REQUIRE(src->entries().size() == 1);
  const auto& e = src->entries()[0];
  CHECK(e.name == "object");
  CHECK_FALSE(e.dtype.has_value());
  CHECK(e.dtype_label == "|O");
  CHECK(e.shape == std::vector<int64_t>{3});
  expect_error([&] { src->load(0); }, path, "object", {"pickle"});
}

TEST_CASE("npz: stored and deflated archives decode to numpy's values", "[io][npz]") {
  for (const char* file : {"stored.npz", "compressed.npz"}) {
    const std::string path = fixture(std::string("numpy/") + file);
    const auto src = muspec::open_tensor_file(path);
    const auto& rec = expected()[file];
    REQUIRE(src->entries().size() == rec.size());
    for (size_t i = 0; i < src->entries().size(); ++i) {
      const auto& e = src->entries()[i];
      CHECK(e.file == path);
      REQUIRE(rec.contains(e.name));
      check_tensor(*src, i, rec[e.name]);
    }
    bool dotted = false;
    for (const auto& e : src->entries()) dotted |= e.name == "layers.0.attn";
    CHECK(dotted);
  }
}

TEST_CASE("npy: hand-written headers in any key order and spacing", "[io][npy]") {
  TempDir dir("npy");
  const std::string data(24, '\0');
  for (const char* dict : {"{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
                           "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,3,),}",
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }"}) {
    INFO(dict);
    const std::string p = dir.file("h.npy");
    write_bytes(p, npy_bytes(dict, data));
    const auto src = muspec::open_npy(p);
    CHECK(src->entries()[0].shape == std::vector<int64_t>{2, 3});
    CHECK(src->load(0).view.strides == std::vector<int64_t>{3, 1});
  }
  const std::string p = dir.file("void.npy");
  write_bytes(p, npy_bytes("{'descr': '|V2', 'fortran_order': False, 'shape': (3,), }", "abcdef"));
  const auto v = muspec::open_npy(p);
  CHECK_FALSE(v->entries()[0].dtype.has_value());
  expect_error([&] { v->load(0); }, p, "void", {"opaque void dtype '|V2'"});
  write_bytes(p, npy_bytes("{'descr': [('a', '<f4'), ('b', '<i4', (2,))], 'fortran_order': False, 'shape': (1,), }",
                           std::string(12, '\0')));
  const auto s = muspec::open_npy(p);
  CHECK(s->entries()[0].dtype_label == "[('a', '<f4'), ('b', '<i4', (2,))]");
  expect_error([&] { s->load(0); }, p, "void", {"structured dtype"});
}

TEST_CASE("npy: malformed files are rejected with specific reasons", "[io][npy][bad]") {
  TempDir dir("npybad");
  const std::string good = read_text(fixture("numpy/f32_2d.npy"));
  const std::string p = dir.file("bad.npy");
  const auto open = [&p] { muspec::open_npy(p); };
  const auto with_dict = [&](const std::string& dict, const std::string& data = std::string(24, '\0')) {
    write_bytes(p, npy_bytes(dict, data));
  };

  write_bytes(p, "\x93NUMPX" + good.substr(6));
  expect_error(open, p, "bad", {"bad magic"});
  write_bytes(p, good.substr(0, 8));
  expect_error(open, p, "bad", {"preamble is truncated"});
  write_bytes(p, good.substr(0, good.size() - 4));
  expect_error(open, p, "bad", {"data is truncated", "needs 48 data bytes", "only 44"});
  write_bytes(p, good + "junk");
  expect_error(open, p, "bad", {"4 trailing bytes"});
  write_bytes(p, good.substr(0, 100));
  expect_error(open, p, "bad", {"header of 118 bytes runs past the end"});
  std::string v4 = good;
  v4[6] = 4;
  write_bytes(p, v4);
  expect_error(open, p, "bad", {"unsupported .npy format version 4.0"});
  write_bytes(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + std::string(20000, ' '),
                           std::string(24, '\0'), 2));
  expect_error(open, p, "bad", {"exceeds the limit of 10000"});

  with_dict("{'descr': '<f4', 'shape': (2, 3), }");
  expect_error(open, p, "bad", {"must have exactly the keys"});
  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}");
  expect_error(open, p, "bad", {"unexpected key 'extra'"});
  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (2, 3)}");
  expect_error(open, p, "bad", {"repeats the key 'shape'"});
  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}");
  expect_error(open, p, "bad", {"shape that is not a tuple"});
  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}");
  expect_error(open, p, "bad", {"shape that is not a tuple: (6)"});
  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, -3)}");
  expect_error(open, p, "bad", {"negative dimension -2"});
  with_dict("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}");
  expect_error(open, p, "bad", {"fortran_order that is not True or False"});
  with_dict("{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}");
  expect_error(open, p, "bad", {"malformed .npy header"});
  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x");
  expect_error(open, p, "bad", {"unexpected text after the dict"});
  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}");
  expect_error(open, p, "bad", {"does not fit in 64 bits"});
  with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}");
  expect_error(open, p, "bad", {"overflows"});
  with_dict("{'descr': " + std::string(40, '(') + "1" + std::string(40, ')') + ", 'fortran_order': False, 'shape': ()}");
  expect_error(open, p, "bad", {"nests too deeply"});
}
