// Little-endian binary encoding for muspec's own byte streams: the scan journal (scan/journal.h)
// and the records a store-reading child process sends back (store/isolated_read.h). Strings are a
// u32 length and the bytes; int64 and double (its bit pattern) 8 bytes; vectors a u32 count and
// the items. Written here rather than taken from a serialization library because both streams
// carry a handful of fixed fields whose layout is documented next to the stream, and the reader
// must treat every length as untrusted (each is checked against the bytes left before use).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace muspec {

/// Thrown by ByteReader when the bytes end early or a value is out of its domain; `what` says which.
struct ByteCodecError {
  std::string what;
};

class ByteWriter {
 public:
  void u8(uint8_t v) { s_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void i64(int64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
  }
  void f64(double v) {
    int64_t bits;
    std::memcpy(&bits, &v, 8);
    i64(bits);
  }
  void flag(bool v) { u8(v ? 1 : 0); }
  void str(const std::string& v) {
    u32(static_cast<uint32_t>(v.size()));
    s_ += v;
  }
  void i64s(const std::vector<int64_t>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (int64_t x : v) i64(x);
  }
  void f64s(const std::vector<double>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (double x : v) f64(x);
  }
  std::string& bytes() { return s_; }

 private:
  std::string s_;
};

/// Reads what ByteWriter wrote from untrusted bytes (not owned); throws ByteCodecError.
class ByteReader {
 public:
  ByteReader(const char* p, size_t n) : p_(p), n_(n) {}
  size_t left() const { return n_ - at_; }
  const char* take(size_t k, const char* what) {
    if (k > left()) throw ByteCodecError{std::string(what) + " runs past the end"};
    const char* q = p_ + at_;
    at_ += k;
    return q;
  }
  uint8_t u8() { return static_cast<uint8_t>(*take(1, "a byte")); }
  uint32_t u32() {
    const auto* b = reinterpret_cast<const unsigned char*>(take(4, "a length"));
    return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  }
  int64_t i64() {
    const auto* b = reinterpret_cast<const unsigned char*>(take(8, "a number"));
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | b[i];
    return static_cast<int64_t>(v);
  }
  double f64() {
    const int64_t bits = i64();
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  bool flag() {
    const uint8_t v = u8();
    if (v > 1) throw ByteCodecError{"a flag is neither 0 nor 1"};
    return v == 1;
  }
  std::string str() {
    const uint32_t k = u32();
    return std::string(take(k, "a string"), k);
  }
  /// A count of items of at least `item_bytes` each, checked against what is left.
  uint32_t count(size_t item_bytes, const char* what) {
    const uint32_t k = u32();
    if (static_cast<uint64_t>(k) * item_bytes > left()) throw ByteCodecError{std::string(what) + " count runs past the end"};
    return k;
  }
  std::vector<int64_t> i64s() {
    std::vector<int64_t> v(count(8, "a shape"));
    for (auto& x : v) x = i64();
    return v;
  }
  std::vector<double> f64s() {
    std::vector<double> v(count(8, "a spectrum"));
    for (auto& x : v) x = f64();
    return v;
  }

 private:
  const char* p_;
  size_t n_, at_ = 0;
};

}  // namespace muspec
