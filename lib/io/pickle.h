// A restricted pickle reader: builds an inert value tree from pickle bytes and never executes,
// imports or instantiates anything.
//
// Why our own: no C/C++ library reads pickles safely (libtorch's unpickler is a heavy
// dependency, needs the whole file in memory and fails on unknown classes; Python's is not an
// option). The subset follows torch.load(weights_only=True) (../shared/reference/
// checkpoint-formats.md §2.2–2.4) plus the protocol-4 opcodes, with one difference by design: an
// unknown GLOBAL becomes an inert Global value and calling it yields an opaque Object that keeps
// its arguments and state, so tensors nested inside unknown objects stay reachable.
//
// Safety: every length is checked against the bytes left; containers may not be modified once
// nested inside another (so no cycles can form); nesting depth, memo size, value count and the
// bytes the values hold are capped (ParseLimits). Errors are PickleError with the byte offset.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace muspec::pickle {

class PickleError : public std::runtime_error {
 public:
  PickleError(uint64_t offset, const std::string& what);
  uint64_t offset() const { return offset_; }

 private:
  uint64_t offset_;
};

struct Value;
using ValuePtr = std::shared_ptr<Value>;

enum class Kind : uint8_t {
  None, Bool, Int, BigInt, Float, String, Bytes,
  Tuple, List, Dict, Set,
  Global,      ///< a reference to module.name, never imported
  Object,      ///< the inert result of calling / instantiating something unknown
  Persistent,  ///< a persistent id (e.g. torch's storage tuple), interpreted by the caller
  Custom,      ///< a value produced by the caller's reduce hook (e.g. a tensor reference)
};

struct Value {
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;                 ///< String (UTF-8), Bytes, BigInt (two's complement LE)
  std::string module, name;         ///< Global; Object: the callable's module/name
  std::vector<ValuePtr> items;      ///< Tuple, List, Set; Dict: key0, value0, key1, value1, ...
  ValuePtr args, state;             ///< Object: call arguments and BUILD state; Persistent: the id in args
  std::shared_ptr<void> custom;     ///< Custom payload
  int depth = 1;                    ///< nesting depth (1 for scalars)
  bool nested = false;              ///< inserted into a container: no longer modifiable

  bool is(Kind k) const { return kind == k; }
  /// Dict lookup by string key; nullptr when absent or not a dict.
  ValuePtr get(const std::string& key) const;
  /// "torch._utils._rebuild_tensor_v2" for a Global, the callable's for an Object.
  std::string qualified_name() const { return module + "." + name; }
};

struct ParseLimits {
  size_t max_memo = size_t{1} << 22;        ///< memo entries
  int max_depth = 512;                      ///< nesting of containers
  uint64_t max_values = uint64_t{1} << 26;  ///< values created
  /// Bytes of memory the values may hold: strings, names copied into globals, copies made by
  /// set()/_codecs.encode()/bytearray(), container slots, the values themselves. 0: the
  /// pickle's own size plus 1 GiB, and never more than the decode memory budget
  /// (core/memory_budget.h), so a few MB cannot copy one memoised string into gigabytes.
  uint64_t max_bytes = 0;
};

/// Called for REDUCE/NEWOBJ of a Global: return a replacement value (e.g. an OrderedDict as a
/// Dict, a tensor reference) or nullptr to get the default inert Object.
using ReduceHook = std::function<ValuePtr(const Value& callable, const ValuePtr& args)>;

/// Parses one pickle starting at `data` (up to `size` bytes) until its STOP opcode.
/// `*consumed` (if not null) receives the number of bytes read, so that a caller can parse
/// several pickles written back to back (the legacy torch format).
ValuePtr parse(const uint8_t* data, uint64_t size, const ReduceHook& hook = nullptr,
               uint64_t* consumed = nullptr, const ParseLimits& limits = {});

ValuePtr make_value(Kind k);

}  // namespace muspec::pickle
