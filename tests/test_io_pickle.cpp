// The restricted pickle reader against CPython's own pickler (fixtures written by
// tests/fixtures/make_pickle_fixtures.py), and against hand-assembled hostile pickles.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "io/pickle.h"
#include "test_support.h"

using namespace muspec::pickle;
using nlohmann::json;

namespace {

std::string hex(const std::string& bytes) {
  std::string s;
  char b[3];
  for (unsigned char c : bytes) std::snprintf(b, sizeof b, "%02x", c), s += b;
  return s;
}

std::string float_hex(double v) {  // Python's float.hex() spelling
  char buf[64];
  if (v == 0) return std::signbit(v) ? "-0x0.0p+0" : "0x0.0p+0";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::snprintf(buf, sizeof buf, "%a", v);
  std::string s = buf;  // glibc: 0x1.8p+0 ; Python: 0x1.8000000000000p+0
  const auto dot = s.find('.'), p = s.find('p');
  std::string mant = dot == std::string::npos ? "" : s.substr(dot + 1, p - dot - 1);
  mant.resize(13, '0');
  return s.substr(0, s.find('x') + 2) + "." + mant + s.substr(p);
}

std::string big_to_decimal(const std::string& le) {  // two's complement LE -> decimal
  std::vector<uint8_t> mag(le.begin(), le.end());
  const bool neg = !mag.empty() && (mag.back() & 0x80);
  if (neg) {  // negate: invert and add one
    int carry = 1;
    for (auto& b : mag) { int v = static_cast<uint8_t>(~b) + carry; b = static_cast<uint8_t>(v); carry = v >> 8; }
  }
  std::string digits;
  while (std::any_of(mag.begin(), mag.end(), [](uint8_t b) { return b != 0; })) {
    int rem = 0;
    for (auto it = mag.rbegin(); it != mag.rend(); ++it) { int cur = rem * 256 + *it; *it = static_cast<uint8_t>(cur / 10); rem = cur % 10; }
    digits += static_cast<char>('0' + rem);
  }
  if (digits.empty()) digits = "0";
  std::reverse(digits.begin(), digits.end());
  return (neg ? "-" : "") + digits;
}

json render(const ValuePtr& v) {
  switch (v->kind) {
    case Kind::None: return nullptr;
    case Kind::Bool: return v->boolean;
    case Kind::Int: return {{"int", std::to_string(v->integer)}};
    case Kind::BigInt: return {{"int", big_to_decimal(v->text)}};
    case Kind::Float: return {{"float", float_hex(v->real)}};
    case Kind::String: return {{"str", v->text}};
    case Kind::Bytes: return {{"bytes", hex(v->text)}};
    case Kind::Tuple: case Kind::List: case Kind::Set: {
      json a = json::array();
      for (const auto& c : v->items) a.push_back(render(c));
      if (v->kind == Kind::Set) {
        std::sort(a.begin(), a.end(), [](const json& x, const json& y) { return x.dump() < y.dump(); });
        return {{"set", a}};
      }
      return {{v->kind == Kind::Tuple ? "tuple" : "list", a}};
    }
    case Kind::Dict: {
      json a = json::array();
      for (size_t i = 0; i + 1 < v->items.size(); i += 2) a.push_back({render(v->items[i]), render(v->items[i + 1])});
      return {{"dict", a}};
    }
    case Kind::Object:  // an OrderedDict without a hook: an inert object holding the items
      if (v->qualified_name() == "collections.OrderedDict") {
        json a = json::array();
        for (size_t i = 0; i + 1 < v->items.size(); i += 2) a.push_back({render(v->items[i]), render(v->items[i + 1])});
        return {{"dict", a}};
      }
      return {{"object", v->qualified_name()}};
    default: return {{"other", static_cast<int>(v->kind)}};
  }
}

ValuePtr parse_file(const std::string& path) {
  const std::string bytes = muspec_test::read_text(path);
  return parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

TEST_CASE("pickle: CPython's pickles at protocols 2-5 decode to the values Python wrote", "[io][pickle]") {
  const json expected = json::parse(muspec_test::read_text(muspec_test::fixture("pickle/expected.json")));
  for (const auto& name : expected["files"]) {
    INFO(name.get<std::string>());
    const json got = render(parse_file(muspec_test::fixture("pickle/" + name.get<std::string>())));
    CHECK(got == expected["value"]);
  }
}

TEST_CASE("pickle: hostile pickles are refused with a specific reason and nothing runs", "[io][pickle][bad-input]") {
  const json hostile = json::parse(muspec_test::read_text(muspec_test::fixture("pickle/hostile.json")));
  for (const auto& [name, reason] : hostile.items()) {
    INFO(name);
    if (reason == "ok") {
      CHECK_NOTHROW(parse_file(muspec_test::fixture("pickle/" + name)));
    } else {
      CHECK_THROWS_WITH(parse_file(muspec_test::fixture("pickle/" + name)), Catch::Contains(reason.get<std::string>()));
    }
  }
}

TEST_CASE("pickle: the reduce hook sees every call, unknown globals stay inert", "[io][pickle]") {
  // GLOBAL my.mod Thing, REDUCE((1,)), then BUILD with a dict holding a nested list.
  static const char raw[] = "\x80\x02" "cmy.mod\nThing\nK\x01\x85R}X\x01\x00\x00\x00x]K\x07" "asb.";
  const std::string p(raw, sizeof raw - 1);
  int calls = 0;
  ReduceHook hook = [&](const Value& fn, const ValuePtr&) -> ValuePtr { ++calls; CHECK(fn.qualified_name() == "my.mod.Thing"); return nullptr; };
  ValuePtr v = parse(reinterpret_cast<const uint8_t*>(p.data()), p.size(), hook);
  CHECK(calls == 1);
  REQUIRE(v->kind == Kind::Object);
  CHECK(v->args->items[0]->integer == 1);
  REQUIRE(v->state);
  CHECK(v->state->get("x")->items[0]->integer == 7);
  // Back-to-back pickles: `consumed` lets the caller continue after STOP.
  const std::string two = std::string("\x80\x02K\x05.\x80\x02K\x06.", 10);
  uint64_t used = 0;
  CHECK(parse(reinterpret_cast<const uint8_t*>(two.data()), two.size(), nullptr, &used)->integer == 5);
  CHECK(used == 5);
  CHECK(parse(reinterpret_cast<const uint8_t*>(two.data()) + used, two.size() - used)->integer == 6);
}
