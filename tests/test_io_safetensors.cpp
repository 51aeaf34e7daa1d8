// safetensors reader and writer, sharded indexes, and open_tensor_file() dispatch.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/tensor_source.h"
#include "input_error_check.h"
#include "test_support.h"

using muspec::DType;
using muspec::InputError;
using muspec_test::fixture;
using muspec_test::read_text;
using muspec_test::TempDir;
using muspec_test::write_bytes;

namespace {

template <typename Fn>
void expect_error(Fn fn, const std::string& file, const std::string& tensor,
                  std::initializer_list<const char*> parts) {
  muspec_test::expect_input_error(fn, file, tensor, parts);
}

/// A safetensors image: u64 LE length of `header`, the header as given, then `data`.
std::string st_bytes(const std::string& header, const std::string& data, uint64_t length_field) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((length_field >> (8 * i)) & 0xff);
  return out + header + data;
}
std::string st_bytes(const std::string& header, const std::string& data) {
  return st_bytes(header, data, header.size());
}

std::string f32_bytes(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(&s[0], v.begin(), s.size());
  return s;
}

double value_at(const muspec::TensorView& v, int64_t flat) {
  muspec::MatrixView one;
  one.dtype = v.dtype;
  one.rows = one.cols = 1;
  one.base = v.data + flat * (muspec::dtype_bits(v.dtype) / 8);
  return muspec::element(one, 0, 0);
}

}  // namespace

TEST_CASE("safetensors: the spec-built fixture decodes to Python's values", "[io][safetensors]") {
  const std::string path = fixture("numpy/tiny.safetensors");
  const auto want = nlohmann::json::parse(read_text(fixture("numpy/expected.json")))["tiny.safetensors"];
  const muspec::SafetensorsFile f(path);
  CHECK(f.metadata() == want["metadata"].get<std::map<std::string, std::string>>());
  REQUIRE(f.entries().size() == 3);
  const char* data_order[] = {"a", "c", "b"};  // sorted by offsets, not by JSON key
  for (size_t i = 0; i < 3; ++i) {
    const auto& e = f.entries()[i];
    CHECK(e.name == data_order[i]);
    CHECK(e.file == path);
    const auto& rec = want["tensors"][e.name];
    CHECK(e.dtype_label == rec["dtype"].get<std::string>());
    CHECK(e.shape == rec["shape"].get<std::vector<int64_t>>());
    const auto h = f.load(i);
    const auto& vals = rec["values_hex"];
    REQUIRE(static_cast<size_t>(h.view.numel()) == vals.size());
    for (size_t k = 0; k < vals.size(); ++k)
      CHECK(value_at(h.view, k) == std::strtod(vals[k].get<std::string>().c_str(), nullptr));
  }
}

TEST_CASE("safetensors: writer round trip", "[io][safetensors]") {
  TempDir dir("st");
  const std::string path = dir.file("w.safetensors");
  std::string bf16(12, '\0');
  for (int i = 0; i < 6; ++i) {
    const uint16_t b = muspec::float_to_bf16(0.5f * i);
    std::memcpy(&bf16[2 * i], &b, 2);
  }
  const std::vector<muspec::SafetensorsTensor> tensors = {
      {"z.weight", DType::F32, {2, 2}, f32_bytes({1, 2, 3, 4})},
      {"a.weight", DType::BF16, {2, 1, 3}, bf16},
      {"empty", DType::F64, {0, 5}, ""},
      {"scalar", DType::F32, {}, f32_bytes({-7})}};
  muspec::write_safetensors(path, tensors, {{"format", "pt"}});
  const std::string raw = read_text(path);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  CHECK((8 + n) % 8 == 0);
  CHECK(raw[8] == '{');
  const auto src = muspec::open_tensor_file(path);
  REQUIRE(src->entries().size() == 4);
  uint64_t offset = 8 + n;
  for (size_t i = 0; i < tensors.size(); ++i) {  // laid out in the order given
    const auto& e = src->entries()[i];
    CHECK(e.name == tensors[i].name);
    CHECK(e.dtype == tensors[i].dtype);
    CHECK(e.shape == tensors[i].shape);
    const auto h = src->load(i);
    CHECK(std::string(reinterpret_cast<const char*>(h.view.data), e.nbytes) == tensors[i].bytes);
    CHECK(raw.compare(offset, e.nbytes, tensors[i].bytes) == 0);
    offset += e.nbytes;
  }
  CHECK(value_at(src->load(1).view, 5) == 2.5);
  CHECK(value_at(src->load(3).view, 0) == -7.0);
  CHECK_THROWS_AS(muspec::write_safetensors(dir.file("x.safetensors"), {{"w", DType::F32, {3}, "abc"}}, {}),
                  muspec::UsageError);
  CHECK_THROWS_AS(muspec::write_safetensors(dir.file("x.safetensors"),
                                            {{"w", DType::F32, {}, "abcd"}, {"w", DType::F32, {}, "abcd"}}, {}),
                  muspec::UsageError);
}

TEST_CASE("safetensors: concurrent loads", "[io][safetensors]") {
  const auto src = muspec::open_tensor_file(fixture("numpy/tiny.safetensors"));
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 200; ++k) ok[t] += src->load(k % 3).view.numel() > 0;
    });
  for (auto& th : threads) th.join();
  for (int v : ok) CHECK(v == 200);
}

TEST_CASE("safetensors: hand-assembled edge cases that are valid", "[io][safetensors]") {
  TempDir dir("stok");
  const std::string p = dir.file("ok.safetensors");
  // Empty tensors share offsets; a zero dimension next to huge ones is fine; padding is allowed.
  write_bytes(p, st_bytes(R"({"e":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]},)"
                          R"("f":{"dtype":"I8","shape":[0],"data_offsets":[0,0]},)"
                          R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":null}   )",
                          f32_bytes({3})));
  const muspec::SafetensorsFile f(p);
  REQUIRE(f.entries().size() == 3);
  CHECK(f.load(0).view.numel() == 0);
  CHECK(value_at(f.load(f.find("w")).view, 0) == 3.0);
  write_bytes(p, st_bytes("{}", ""));
  CHECK(muspec::SafetensorsFile(p).entries().empty());
  // Packed 4-bit data is recognised and sized, but not loadable.
  write_bytes(p, st_bytes(R"({"q":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}})", "ab"));
  const muspec::SafetensorsFile q(p);
  expect_error([&] { q.load(0); }, p, "q", {"packed sub-byte dtype F4"});
}

TEST_CASE("safetensors: malformed files are rejected with specific reasons", "[io][safetensors][bad]") {
  TempDir dir("stbad");
  const std::string p = dir.file("bad.safetensors");
  const auto open = [&p] { muspec::SafetensorsFile f(p); };
  const auto one = [](const std::string& info) { return "{\"w\":" + info + "}"; };
  const std::string w16 = one(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})");
  const std::string data16(16, '\0');

  write_bytes(p, "abc");
  expect_error(open, p, "", {"3 bytes, too short for the 8-byte header length"});
  write_bytes(p, st_bytes(w16, data16).substr(0, 40));
  const std::string past = "header length " + std::to_string(w16.size()) + " runs past the end of the 40-byte file";
  expect_error(open, p, "", {past.c_str()});
  write_bytes(p, st_bytes("{}", "", 100'000'001));
  expect_error(open, p, "", {"header length 100000001 exceeds the limit of 100000000"});
  write_bytes(p, st_bytes("{}", "", ~uint64_t{0}));
  expect_error(open, p, "", {"exceeds the limit"});
  for (const char* bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    write_bytes(p, st_bytes(std::string("{\"") + bad + "\":{}}", ""));
    expect_error(open, p, "", {"header is not valid UTF-8", "offset 2"});
  }
  write_bytes(p, st_bytes("{\"w\": [1, 2", ""));
  expect_error(open, p, "", {"invalid header JSON"});
  write_bytes(p, st_bytes(" {}", ""));
  expect_error(open, p, "", {"does not start with '{'"});
  write_bytes(p, st_bytes(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", "abcd"));
  expect_error(open, p, "", {"duplicate JSON key 'w'"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F32","dtype":"F16","shape":[],"data_offsets":[0,4]})"), "abcd"));
  expect_error(open, p, "", {"duplicate JSON key 'dtype'"});
  write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')));
  expect_error(open, p, "b", {"data_offsets [4, 12) overlap by 4 bytes after tensor 'a'"});
  write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", std::string(12, '\0')));
  expect_error(open, p, "b", {"leave a gap of 4 bytes after tensor 'a'"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), std::string(8, '\0')));
  expect_error(open, p, "w", {"[4, 8)", "must start at byte 0"});
  write_bytes(p, st_bytes(w16, data16 + "tail"));
  expect_error(open, p, "", {"4 trailing bytes after the last tensor"});
  write_bytes(p, st_bytes(w16, data16.substr(0, 12)));
  expect_error(open, p, "", {"file is truncated"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})"), std::string(12, '\0')));
  expect_error(open, p, "w", {"data_offsets [0, 12) give 12 bytes but F32 [2, 2] needs 16"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]})"), data16));
  expect_error(open, p, "w", {"F32 [4294967296, 4294967296]", "overflows 64 bits"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F32","shape":[-2,2],"data_offsets":[0,16]})"), data16));
  expect_error(open, p, "w", {"negative value -2"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F32","shape":[2.0,2],"data_offsets":[0,16]})"), data16));
  expect_error(open, p, "w", {"non-negative integers"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F7","shape":[2,2],"data_offsets":[0,16]})"), data16));
  expect_error(open, p, "w", {"unknown dtype 'F7'"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F32","shape":[2,2],"data_offsets":[16,0]})"), data16));
  expect_error(open, p, "w", {"must start at byte 0"});
  write_bytes(p, st_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"F32","shape":[1],"data_offsets":[4,2]}})", std::string(4, '\0')));
  expect_error(open, p, "c", {"end before they begin"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F4","shape":[3],"data_offsets":[0,2]})"), "ab"));
  expect_error(open, p, "w", {"F4 [3] is 12 bits, not a whole number of bytes"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})"), "abcd"));
  expect_error(open, p, "w", {"data_offsets is not an array of two integers"});
  write_bytes(p, st_bytes(one(R"({"dtype":"F32","shape":[1]})"), "abcd"));
  expect_error(open, p, "w", {"needs dtype, shape and data_offsets"});
  write_bytes(p, st_bytes(one("[1]"), ""));
  expect_error(open, p, "w", {"not a JSON object"});
  write_bytes(p, st_bytes(R"({"__metadata__":{"format":1}})", ""));
  expect_error(open, p, "", {"__metadata__ value of 'format' is not a string"});
  write_bytes(p, st_bytes(std::string(100, '[') + std::string(100, ']'), ""));
  expect_error(open, p, "", {"does not start with '{'"});
  write_bytes(p, st_bytes("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", ""));
  expect_error(open, p, "", {"nests deeper than"});
}

TEST_CASE("safetensors: sharded index", "[io][safetensors]") {
  TempDir dir("shard");
  muspec::write_safetensors(dir.file("m-1.safetensors"), {{"a", DType::F32, {1}, f32_bytes({1})},
                                                          {"b", DType::F32, {2}, f32_bytes({2, 3})}}, {});
  muspec::write_safetensors(dir.file("m-2.safetensors"), {{"c", DType::F32, {1}, f32_bytes({4})}}, {});
  const std::string index = dir.file("model.safetensors.index.json");
  write_bytes(index, R"({"metadata":{"total_size":16},"weight_map":{"c":"m-2.safetensors","a":"m-1.safetensors","b":"m-1.safetensors"}})");
  const auto src = muspec::open_tensor_file(index);
  CHECK(src->path() == index);
  REQUIRE(src->entries().size() == 3);
  const char* names[] = {"a", "b", "c"};
  const double firsts[] = {1, 2, 4};
  for (size_t i = 0; i < 3; ++i) {
    CHECK(src->entries()[i].name == names[i]);
    CHECK(src->entries()[i].file == dir.file(i < 2 ? "m-1.safetensors" : "m-2.safetensors"));
    CHECK(value_at(src->load(i).view, 0) == firsts[i]);
  }

  const auto open = [&index] { muspec::open_tensor_file(index); };
  write_bytes(index, R"({"weight_map":{"a":"m-1.safetensors","zz":"m-2.safetensors"}})");
  expect_error(open, index, "zz", {"places it in 'm-2.safetensors', which has no such tensor"});
  for (const char* shard : {"/etc/passwd", "../m-1.safetensors", "sub/../../x", ""}) {
    write_bytes(index, std::string(R"({"weight_map":{"a":")") + shard + "\"}}");
    expect_error(open, index, "a", {"shard name"});
  }
  write_bytes(index, R"({"weight_map":{"a":"missing.safetensors"}})");
  expect_error(open, dir.file("missing.safetensors"), "", {"cannot open", "No such file"});
  muspec::write_safetensors(dir.file("m-3.safetensors"), {{"q", DType::F32, {1}, f32_bytes({8})},
                                                          {"a", DType::F32, {1}, f32_bytes({9})}}, {});
  write_bytes(index, R"({"weight_map":{"a":"m-1.safetensors","q":"m-3.safetensors"}})");
  expect_error(open, index, "a", {"appears in two shards"});
  write_bytes(index, R"({"weight_map":["a"]})");
  expect_error(open, index, "", {"no \"weight_map\" object"});
  write_bytes(index, R"({"weight_map":{"a":"m-1.safetensors","a":"m-2.safetensors"}})");
  expect_error(open, index, "", {"duplicate JSON key 'a'"});
}

TEST_CASE("open_tensor_file: dispatch by name, checked against content", "[io]") {
  TempDir dir("open");
  const std::string npy = read_text(fixture("numpy/f32_2d.npy"));
  const std::string npz = read_text(fixture("numpy/stored.npz"));
  const std::string st = read_text(fixture("numpy/tiny.safetensors"));
  const auto open_path = [](const std::string& p) { return [p] { muspec::open_tensor_file(p); }; };

  std::string p = dir.file("x.safetensors");
  write_bytes(p, npy);
  expect_error(open_path(p), p, "", {"not a safetensors file", "NumPy .npy magic"});
  write_bytes(p, npz);
  expect_error(open_path(p), p, "", {"not a safetensors file", "ZIP signature"});
  p = dir.file("x.npy");
  write_bytes(p, npz);
  expect_error(open_path(p), p, "", {"not an .npy file", "ZIP signature"});
  p = dir.file("x.npz");
  write_bytes(p, st);
  expect_error(open_path(p), p, "", {"not an .npz file", "looks like a safetensors file"});

  p = dir.file("weights.dat");  // unknown suffix: sniffed (.bin is a torch.save name)
  write_bytes(p, npy);
  CHECK(muspec::open_tensor_file(p)->entries()[0].name == "weights");
  write_bytes(p, st);
  CHECK(muspec::open_tensor_file(p)->entries().size() == 3);
  write_bytes(p, "hello world, this is text");
  expect_error(open_path(p), p, "", {"unrecognised tensor file"});
  p = dir.file("absent.npy");
  expect_error(open_path(p), p, "", {"cannot open: No such file or directory"});
  p = dir.file("empty.safetensors");
  write_bytes(p, "");
  expect_error(open_path(p), p, "", {"0 bytes, too short"});
  expect_error(open_path(dir.path().string()), dir.path().string(), "", {"not a regular file"});

  CHECK(muspec::is_tensor_file_name("a/model-00001-of-00002.safetensors"));
  CHECK(muspec::is_tensor_file_name("model.safetensors.index.json"));
  CHECK(muspec::is_tensor_file_name("x.npy"));
  CHECK(muspec::is_tensor_file_name("x.npz"));
  CHECK_FALSE(muspec::is_tensor_file_name("config.json"));
  CHECK_FALSE(muspec::is_tensor_file_name("notes.txt"));
}
