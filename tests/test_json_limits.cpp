// core/json_limits: nesting limited while parsing (a deep document is refused before anything
// recursive touches it), duplicate keys on request, errors naming the file, the same values
// as nlohmann's own parser, FIFOs refused without hanging.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "core/json_limits.h"
#include "fifo_unblocker.h"
#include "input_error_check.h"
#include "test_support.h"

using muspec::JsonLimits;
using muspec::parse_json_limited;
using muspec::read_json_file;
using muspec_test::expect_input_error;
using nlohmann::json;

namespace {

std::string nested(const char* open, const char* close, size_t depth, const std::string& inner = "1") {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += open;
  s += inner;
  for (size_t i = 0; i < depth; ++i) s += close;
  return s;
}

}  // namespace

TEST_CASE("json limits: the same document as nlohmann's parser", "[core][json]") {
  const std::string text =
      R"({"a": [1, -2, 3.5, "x", true, null, {"b": {}}, []], "c": {"d": [[1], [2, {"e": 18446744073709551615}]]}})";
  CHECK(parse_json_limited(text, "t.json") == json::parse(text));
  CHECK(parse_json_limited("7", "t.json") == json(7));
  CHECK(parse_json_limited("[]", "t.json") == json::array());
}

TEST_CASE("json limits: nesting past the limit is refused while parsing", "[core][json][bad-input]") {
  JsonLimits l;
  l.max_depth = 4;
  CHECK(parse_json_limited(nested("[", "]", 4), "t.json", l) == json::parse(nested("[", "]", 4)));
  expect_input_error([&] { parse_json_limited(nested("[", "]", 5), "t.json", l); }, "t.json", "",
                     {"JSON nests deeper than 4 levels"});
  expect_input_error([&] { parse_json_limited(nested("{\"k\":", "}", 5), "t.json", l); }, "t.json", "",
                     {"nests deeper than 4"});
  // A million levels: nlohmann's parser is iterative, but dump(), copies and comparisons of
  // the result recurse; the default limit refuses the document long before that matters.
  expect_input_error([&] { parse_json_limited(nested("[", "]", 1000000), "deep.json"); }, "deep.json", "",
                     {"nests deeper than 64 levels"});
  CHECK_NOTHROW(parse_json_limited(nested("[", "]", 64), "t.json"));
}

TEST_CASE("json limits: syntax errors and duplicate keys name the file", "[core][json][bad-input]") {
  expect_input_error([] { parse_json_limited("{\"a\": ", "t.json"); }, "t.json", "", {"invalid JSON: "});
  expect_input_error([] { parse_json_limited("[1] 2", "t.json"); }, "t.json", "", {"invalid JSON"});
  JsonLimits l;
  l.syntax_label = "invalid header JSON";
  expect_input_error([&] { parse_json_limited("{", "h", l); }, "h", "", {"invalid header JSON: "});
  CHECK(parse_json_limited(R"({"a": 1, "a": 2})", "t.json") == json{{"a", 2}});  // nlohmann's rule
  l.reject_duplicate_keys = true;
  expect_input_error([&] { parse_json_limited(R"({"a": {"b": 1, "b": 2}})", "t.json", l); }, "t.json", "",
                     {"duplicate JSON key 'b'"});
  CHECK_NOTHROW(parse_json_limited(R"({"a": {"b": 1}, "b": {"a": 2}})", "t.json", l));  // per object
}

TEST_CASE("json limits: files are read only when regular", "[core][json][bad-input]") {
  muspec_test::TempDir dir("json");
  const std::string good = dir.file("good.json"), fifo = dir.file("pipe.json");
  muspec_test::write_bytes(good, R"({"x": [1, 2]})");
  CHECK(read_json_file(good) == json{{"x", {1, 2}}});
  expect_input_error([&] { read_json_file(dir.file("missing.json")); }, dir.file("missing.json"), "",
                     {"cannot open: No such file or directory"});
  expect_input_error([&] { read_json_file(dir.path().string()); }, dir.path().string(), "", {"is a directory"});
  REQUIRE(muspec_test::make_fifo(fifo));
  muspec_test::FifoUnblocker unblock(fifo);
  expect_input_error([&] { read_json_file(fifo); }, fifo, "", {"is a FIFO, not a regular file"});
}
