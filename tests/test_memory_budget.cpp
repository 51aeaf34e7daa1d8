// Issue 14: small files that decode to huge allocations are refused against a memory budget
// (core/memory_budget.h) before anything is allocated: pickle amplifiers, a deflate member that
// declares far more than it holds, a stride-0 view. Every case here allocated (or zero-filled)
// the declared size before.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/memory_budget.h"
#include "io/pickle.h"
#include "io/zip.h"
#include "input_error_check.h"
#include "test_support.h"

using muspec::InputError;
using muspec::UsageError;
namespace pk = muspec::pickle;

namespace {

/// Restores the detected budget when a test that overrides it ends.
struct BudgetOverride {
  uint64_t saved;
  std::string source;
  explicit BudgetOverride(uint64_t bytes) : saved(muspec::memory_budget()), source(muspec::memory_budget_source()) {
    muspec::set_memory_budget(bytes, "test");
  }
  ~BudgetOverride() { muspec::set_memory_budget(saved, source); }
};

void put_le(std::string* s, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}

/// PROTO 4, a `size`-byte string memoised in slot 0, then EMPTY_LIST and `copies` times
/// (BINGET 0, BINGET 0, <op>, APPEND): each op copies the big string once or twice.
std::string amplifier(uint64_t size, int copies, const std::string& op) {
  std::string p = "\x80\x04";
  p += '\x8d';  // BINUNICODE8
  put_le(&p, size, 8);
  p += std::string(size, 'a');
  p += std::string("q\x00\x30", 3);  // BINPUT 0, POP
  p += ']';          // EMPTY_LIST
  for (int i = 0; i < copies; ++i) p += op + "a";
  return p + ".";
}

const std::string kStackGlobal = std::string("h\x00h\x00\x93", 5);  // module and name: both the big string
/// _codecs.encode(big, 'latin1'): GLOBAL, then (BINGET 0, 'latin1') TUPLE2, REDUCE.
const std::string kCodecsEncode = std::string("c_codecs\nencode\nh") + '\0' + "\x8c\x06latin1\x86R";

pk::ValuePtr parse_string(const std::string& p, uint64_t max_bytes) {
  pk::ParseLimits limits;
  limits.max_bytes = max_bytes;
  return pk::parse(reinterpret_cast<const uint8_t*>(p.data()), p.size(), nullptr, nullptr, limits);
}

void expect_byte_limit(const std::string& p, uint64_t max_bytes) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    parse_string(p, max_bytes);
    FAIL("the pickle was read whole");
  } catch (const pk::PickleError& e) {
    CHECK_THAT(e.what(), Catch::Contains("would hold more than"));
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

}  // namespace

TEST_CASE("memory budget: sizes parse with binary suffixes, junk is refused", "[budget]") {
  CHECK(muspec::parse_byte_size("1024", "x") == 1024);
  CHECK(muspec::parse_byte_size("512M", "x") == (uint64_t{512} << 20));
  CHECK(muspec::parse_byte_size("8G", "x") == (uint64_t{8} << 30));
  CHECK(muspec::parse_byte_size("1.5K", "x") == 1536);
  CHECK(muspec::parse_byte_size("2GiB", "x") == (uint64_t{2} << 30));
  CHECK_THROWS_AS(muspec::parse_byte_size("lots", "x"), UsageError);
  CHECK_THROWS_AS(muspec::parse_byte_size("-1G", "x"), UsageError);
  CHECK_THROWS_AS(muspec::parse_byte_size("4Q", "x"), UsageError);
  CHECK(muspec::byte_size_text(uint64_t{8} << 30) == "8.0 GiB");
}

TEST_CASE("memory budget: the default comes from MemAvailable or the cgroup, and admits by size", "[budget]") {
  CHECK(muspec::memory_budget() > 0);
  const BudgetOverride budget(uint64_t{1} << 20);
  CHECK_NOTHROW(muspec::admit_allocation(uint64_t{1} << 20, "f", "t", "x"));
  muspec_test::expect_input_error([] { muspec::admit_allocation((uint64_t{1} << 20) + 1, "f.npz", "w", "what"); }, "f.npz", "w",
                                  {"decoding needs 1.0 MiB", "memory budget is 1.0 MiB", "MUSPEC_MEMORY_BUDGET"});
}

TEST_CASE("pickle: amplifiers are refused by bytes, not after gigabytes", "[budget][pickle]") {
  // 1 MiB string; 300 copies would hold 300-600 MiB; the limit is 64 MiB.
  const uint64_t limit = uint64_t{64} << 20;
  expect_byte_limit(amplifier(1 << 20, 300, kStackGlobal), limit);
  expect_byte_limit(amplifier(1 << 20, 300, kCodecsEncode), limit);
  // set(list) copies every slot of a memoised list: a 2^16-item list copied 2000 times.
  std::string p = "\x80\x04]";
  p += "(";
  for (int i = 0; i < (1 << 16); ++i) p += "K\x01";
  p += std::string("eq\x00\x30]", 5);  // APPENDS, BINPUT 0, POP, EMPTY_LIST
  const std::string set_of = std::string("cbuiltins\nset\nh") + '\0' + "\x85R";
  for (int i = 0; i < 2000; ++i) p += set_of + "a";
  p += ".";
  expect_byte_limit(p, limit);
  // The same pickles with a few copies are fine.
  CHECK(parse_string(amplifier(1 << 20, 3, kStackGlobal), limit)->items.size() == 3);
}

TEST_CASE("pickle: the default byte limit is the pickle's size plus 1 GiB, capped by the memory budget", "[budget][pickle]") {
  const BudgetOverride budget(uint64_t{32} << 20);
  const std::string p = amplifier(1 << 20, 40, kStackGlobal);  // 40-80 MiB of copies from a 1 MiB pickle
  CHECK_THROWS_WITH(pk::parse(reinterpret_cast<const uint8_t*>(p.data()), p.size()), Catch::Contains("memory budget"));
}

TEST_CASE("zip: a deflate member declaring more than the budget is refused before the buffer exists", "[budget][zip]") {
  // An archive whose one deflated member declares 512 MiB from 600 KB of junk (within
  // deflate's 1032:1); before, read() zero-filled 512 MiB and then found the junk.
  const uint64_t usize = uint64_t{512} << 20, csize = 600000;
  std::string z;
  const std::string name = "w.npy", data(csize, '\x55');
  put_le(&z, 0x04034b50, 4); put_le(&z, 45, 2); put_le(&z, 0, 2); put_le(&z, 8, 2); put_le(&z, 0, 4);
  put_le(&z, 0, 4); put_le(&z, csize, 4); put_le(&z, usize, 4); put_le(&z, name.size(), 2); put_le(&z, 0, 2);
  z += name + data;
  const uint64_t cd_offset = z.size();
  std::string cd;
  put_le(&cd, 0x02014b50, 4); put_le(&cd, 45, 2); put_le(&cd, 45, 2); put_le(&cd, 0, 2); put_le(&cd, 8, 2);
  put_le(&cd, 0, 4); put_le(&cd, 0, 4); put_le(&cd, csize, 4); put_le(&cd, usize, 4);
  put_le(&cd, name.size(), 2); put_le(&cd, 0, 2); put_le(&cd, 0, 2); put_le(&cd, 0, 2); put_le(&cd, 0, 2);
  put_le(&cd, 0, 4); put_le(&cd, 0, 4);
  cd += name;
  z += cd;
  put_le(&z, 0x06054b50, 4); put_le(&z, 0, 4); put_le(&z, 1, 2); put_le(&z, 1, 2);
  put_le(&z, cd.size(), 4); put_le(&z, cd_offset, 4); put_le(&z, 0, 2);
  muspec_test::TempDir dir("budget");
  const std::string path = dir.file("bomb.npz");
  muspec_test::write_bytes(path, z);
  const muspec::ZipArchive zip(path);
  REQUIRE(zip.members().size() == 1);
  const BudgetOverride budget(uint64_t{64} << 20);
  muspec_test::expect_input_error([&] { zip.read(zip.members()[0]); }, path, "",
                                  {"member 'w.npy' inflated", "decoding needs 512.0 MiB", "memory budget is 64.0 MiB"});
}
