// The ZIP reader (io/zip.h) on archives written by Python's zipfile (via numpy) and on
// hand-assembled archives, including ZIP64 structures and malformed input; plus .npz archives
// whose members lie about their sizes.
#include <catch2/catch.hpp>

#include <cstring>
#include <optional>

#include "core/error.h"
#include "io/npz.h"
#include "io/zip.h"
#include "input_error_check.h"
#include "test_support.h"

using muspec::InputError;
using muspec::ZipArchive;
using muspec_test::fixture;
using muspec_test::TempDir;
using muspec_test::write_bytes;

namespace {

uint32_t crc32_of(const std::string& s) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : s) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put16(std::string* s, uint64_t v) { for (int i = 0; i < 2; ++i) s->push_back(static_cast<char>(v >> (8 * i))); }
void put32(std::string* s, uint64_t v) { for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i))); }
void put64(std::string* s, uint64_t v) { for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>(v >> (8 * i))); }

/// A member to assemble; `data` is written as is (already compressed when method is 8).
struct FakeMember {
  std::string name;
  std::string data;
  std::string plain;  ///< uncompressed bytes, for the CRC and size (defaults to data)
  uint16_t method = 0;
  uint16_t flags = 0;
  bool zip64 = false;  ///< sentinels in the central entry plus a ZIP64 extra field
  std::optional<uint64_t> usize, csize;
  std::optional<uint32_t> crc;
};

FakeMember member(std::string name, std::string data, std::string plain = "", uint16_t method = 0) {
  FakeMember m;
  m.name = std::move(name);
  m.data = std::move(data);
  m.plain = std::move(plain);
  m.method = method;
  return m;
}

struct ZipLayout {
  bool zip64_end = false;               ///< write a ZIP64 end record and locator
  std::optional<uint64_t> cd_offset;    ///< lie about where the central directory is
};

std::string build_zip(const std::vector<FakeMember>& members, const ZipLayout& layout = {}) {
  std::string out, cd;
  for (const auto& m : members) {
    const std::string& plain = m.plain.empty() ? m.data : m.plain;
    const uint64_t usize = m.usize.value_or(plain.size()), csize = m.csize.value_or(m.data.size());
    const uint32_t crc = m.crc.value_or(crc32_of(plain));
    const uint64_t lho = out.size();
    put32(&out, 0x04034b50); put16(&out, 20); put16(&out, m.flags); put16(&out, m.method);
    put32(&out, 0); put32(&out, crc); put32(&out, csize); put32(&out, usize);
    put16(&out, m.name.size()); put16(&out, 0);
    out += m.name + m.data;
    std::string extra;
    if (m.zip64) { put16(&extra, 1); put16(&extra, 24); put64(&extra, usize); put64(&extra, csize); put64(&extra, lho); }
    const uint64_t s32 = m.zip64 ? 0xFFFFFFFFu : 0;
    put32(&cd, 0x02014b50); put16(&cd, 45); put16(&cd, 45); put16(&cd, m.flags); put16(&cd, m.method);
    put32(&cd, 0); put32(&cd, crc); put32(&cd, m.zip64 ? s32 : csize); put32(&cd, m.zip64 ? s32 : usize);
    put16(&cd, m.name.size()); put16(&cd, extra.size()); put16(&cd, 0); put16(&cd, 0); put16(&cd, 0);
    put32(&cd, 0); put32(&cd, m.zip64 ? s32 : lho);
    cd += m.name + extra;
  }
  const uint64_t cd_offset = layout.cd_offset.value_or(out.size());
  out += cd;
  if (layout.zip64_end) {
    const uint64_t rec = out.size();
    put32(&out, 0x06064b50); put64(&out, 44); put16(&out, 45); put16(&out, 45); put32(&out, 0); put32(&out, 0);
    put64(&out, members.size()); put64(&out, members.size()); put64(&out, cd.size()); put64(&out, cd_offset);
    put32(&out, 0x07064b50); put32(&out, 0); put64(&out, rec); put32(&out, 1);
  }
  put32(&out, 0x06054b50); put16(&out, 0); put16(&out, 0);
  put16(&out, layout.zip64_end ? 0xFFFF : members.size()); put16(&out, layout.zip64_end ? 0xFFFF : members.size());
  put32(&out, layout.zip64_end ? 0xFFFFFFFFu : cd.size()); put32(&out, layout.zip64_end ? 0xFFFFFFFFu : cd_offset);
  put16(&out, 0);
  return out;
}

/// A raw deflate stream holding `s` in one final stored block (RFC 1951 §3.2.4).
std::string deflate_stored_block(const std::string& s) {
  std::string out(1, '\x01');
  put16(&out, s.size());
  put16(&out, ~s.size() & 0xFFFF);
  return out + s;
}

/// Asserts that `fn` throws InputError for `file` whose message contains every part.
template <typename Fn>
void expect_error(Fn fn, const std::string& file, std::initializer_list<const char*> parts,
                  const std::string& tensor = "") {
  muspec_test::expect_input_error(fn, file, tensor, parts);
}

std::string write_zip(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.file(name);
  write_bytes(path, bytes);
  return path;
}

std::string as_string(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

}  // namespace

TEST_CASE("zip: members of numpy's stored and deflated archives", "[io][zip]") {
  const ZipArchive stored(fixture("numpy/stored.npz"));
  const ZipArchive deflated(fixture("numpy/compressed.npz"));
  REQUIRE(stored.members().size() == 3);
  REQUIRE(deflated.members().size() == 3);
  for (const auto& m : stored.members()) {
    INFO(m.name);
    CHECK(m.method == 0);
    CHECK(m.compressed_size == m.uncompressed_size);
    const muspec::ByteSpan span = stored.view_stored(m);
    CHECK(span.data == stored.file()->data() + m.data_offset);  // in place, zero copy
    const std::string viewed(reinterpret_cast<const char*>(span.data), span.size);
    CHECK(viewed.compare(0, 6, "\x93NUMPY") == 0);
    CHECK(as_string(stored.read(m)) == viewed);
    const muspec::ZipMember* twin = deflated.find(m.name);
    REQUIRE(twin != nullptr);
    CHECK(twin->method == 8);
    CHECK(as_string(deflated.read(*twin)) == viewed);
    CHECK(as_string(deflated.read_prefix(*twin, 20)) == viewed.substr(0, 20));
    CHECK(as_string(deflated.read_prefix(*twin, 1u << 20)) == viewed);
    CHECK_THROWS_AS(deflated.view_stored(*twin), InputError);
  }
  CHECK(stored.find("w.npy") != nullptr);
  CHECK(stored.find("nope") == nullptr);
}

TEST_CASE("zip: hand-built archives, classic and ZIP64", "[io][zip]") {
  TempDir dir("zip");
  const std::string hello = "hello, zip";
  FakeMember a = member("dir/a.txt", hello);
  FakeMember b = member("b.bin", deflate_stored_block("0123456789"), "0123456789", 8);
  FakeMember empty = member("empty", "");
  for (bool zip64 : {false, true}) {
    a.zip64 = b.zip64 = zip64;
    const std::string path = write_zip(dir, "t.zip", build_zip({a, b, empty}, {zip64, std::nullopt}));
    const ZipArchive z(path);
    REQUIRE(z.members().size() == 3);
    CHECK(z.members()[0].name == "dir/a.txt");
    CHECK(z.members()[0].local_header_offset == 0);
    CHECK(z.members()[0].data_offset == 30 + a.name.size());
    CHECK(as_string(z.read(z.members()[0])) == hello);
    CHECK(as_string(z.read(z.members()[1])) == "0123456789");
    CHECK(z.read(z.members()[2]).empty());
  }
}

TEST_CASE("zip: malformed archives are rejected with specific reasons", "[io][zip][bad]") {
  TempDir dir("zipbad");
  const std::string text = "some member bytes";
  const FakeMember ok = member("m.txt", text);
  const FakeMember deflated = member("d.txt", deflate_stored_block(text), text, 8);
  const auto open = [](const std::string& p) { return [p] { ZipArchive z(p); }; };
  const auto read_first = [](const std::string& p) { return [p] { ZipArchive z(p); z.read(z.members().at(0)); }; };

  SECTION("too short, truncated, not a zip") {
    auto p = write_zip(dir, "short.zip", "PK\x03\x04");
    expect_error(open(p), p, {"too short to be a ZIP"});
    const std::string full = build_zip({ok});
    p = write_zip(dir, "cut.zip", full.substr(0, full.size() - 5));
    expect_error(open(p), p, {"no ZIP end-of-central-directory record"});
    p = write_zip(dir, "text.zip", std::string(100, 'x'));
    expect_error(open(p), p, {"no ZIP end-of-central-directory record"});
  }
  SECTION("central directory offset past EOF") {
    auto p = write_zip(dir, "cd.zip", build_zip({ok}, {false, 1u << 30}));
    expect_error(open(p), p, {"central directory at offset 1073741824", "runs past"});
    p = write_zip(dir, "cd64.zip", build_zip({ok}, {true, uint64_t{1} << 62}));
    expect_error(open(p), p, {"central directory at offset 4611686018427387904"});
  }
  SECTION("corrupted deflate stream") {
    FakeMember bad = deflated;
    bad.data[0] = '\x07';  // BTYPE = 11: reserved
    auto p = write_zip(dir, "corrupt.zip", build_zip({bad}));
    expect_error(read_first(p), p, {"member 'd.txt'", "corrupted deflate stream"});
    bad = deflated;
    bad.data.resize(bad.data.size() - 4);
    p = write_zip(dir, "trunc.zip", build_zip({bad}));
    expect_error(read_first(p), p, {"member 'd.txt'", "truncated"});
  }
  SECTION("CRC mismatch") {
    for (FakeMember m : {ok, deflated}) {
      m.crc = 0x12345678u;
      const auto p = write_zip(dir, "crc.zip", build_zip({m}));
      expect_error(read_first(p), p, {"CRC-32 mismatch", "declared 305419896"});
    }
  }
  SECTION("declared sizes that lie") {
    FakeMember m = deflated;
    m.usize = text.size() + 5;
    auto p = write_zip(dir, "big.zip", build_zip({m}));
    expect_error(read_first(p), p, {"inflates to 17 bytes, not the declared 22"});
    m.usize = text.size() - 5;
    p = write_zip(dir, "small.zip", build_zip({m}));
    expect_error(read_first(p), p, {"inflates to more than the declared 12 bytes"});
    m.usize = uint64_t{1} << 40;
    m.zip64 = true;
    p = write_zip(dir, "bomb.zip", build_zip({m}));
    expect_error(open(p), p, {"more than deflate can produce"});
    FakeMember s = ok;
    s.usize = s.csize = 1000;
    p = write_zip(dir, "stored.zip", build_zip({s}));
    expect_error(open(p), p, {"member 'm.txt'", "runs past the central directory"});
    s.usize = 5;
    p = write_zip(dir, "stored2.zip", build_zip({s}));
    expect_error(open(p), p, {"is stored but declares"});
  }
  SECTION("unsafe names, duplicates, encryption, other methods") {
    for (const char* name : {"../evil", "a/../../b", "/abs", "C:\\x", ""}) {
      FakeMember m = ok;
      m.name = name;
      const auto p = write_zip(dir, "name.zip", build_zip({m}));
      expect_error(open(p), p, {"name"});
    }
    auto p = write_zip(dir, "dup.zip", build_zip({ok, ok}));
    expect_error(open(p), p, {"duplicate member 'm.txt'"});
    FakeMember m = ok;
    m.flags = 1;
    p = write_zip(dir, "enc.zip", build_zip({m}));
    expect_error(open(p), p, {"is encrypted"});
    m = ok;
    m.method = 12;
    p = write_zip(dir, "bz.zip", build_zip({m}));
    expect_error(open(p), p, {"compression method 12"});
  }
  SECTION("corrupt local header and overlapping members") {
    std::string bytes = build_zip({ok});
    bytes[0] = 'X';
    auto p = write_zip(dir, "local.zip", bytes);
    expect_error(open(p), p, {"bad local header signature"});
    FakeMember m = ok;
    m.zip64 = true;
    bytes = build_zip({m});
    const size_t lho_field = bytes.size() - 22 - 8;  // last 8 bytes of the ZIP64 extra field
    for (int i = 0; i < 8; ++i) bytes[lho_field + i] = '\x7f';
    p = write_zip(dir, "lho.zip", bytes);
    expect_error(open(p), p, {"local header offset", "out of range"});
  }
}

TEST_CASE("npz: members whose declared size lies", "[io][npz][bad]") {
  TempDir dir("npzbad");
  const ZipArchive real(fixture("numpy/stored.npz"));
  const std::string npy = as_string(real.read(*real.find("w.npy")));
  const auto open = [](const std::string& p) { return [p] { muspec::open_npz(p); }; };

  FakeMember m = member("w.npy", npy);
  m.usize = m.csize = npy.size() - 8;  // the header's shape then needs 8 more bytes
  auto p = write_zip(dir, "short.npz", build_zip({m}));
  expect_error(open(p), p, {"truncated", "needs 48 data bytes", "only 40"}, "w");

  m = member("w.npy", npy + "garbage!");
  p = write_zip(dir, "long.npz", build_zip({m}));
  expect_error(open(p), p, {"8 trailing bytes"}, "w");

  m = member("w.npy", deflate_stored_block(npy), npy, 8);
  m.usize = npy.size() + 100;
  p = write_zip(dir, "liar.npz", build_zip({m}));
  expect_error(open(p), p, {"member 'w.npy'", "inflates to 176 bytes, not the declared 276"});

  m = member("w.npy", deflate_stored_block(npy), npy, 8);
  m.crc = 1;
  p = write_zip(dir, "crc.npz", build_zip({m}));
  const auto src = muspec::open_npz(p);  // the header prefix is fine; the CRC fails on load
  expect_error([&] { src->load(0); }, p, {"CRC-32 mismatch"});
}
