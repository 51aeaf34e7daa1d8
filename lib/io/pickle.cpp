#include "io/pickle.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "core/memory_budget.h"
#include "io/pickle_danger.h"

namespace muspec::pickle {

PickleError::PickleError(uint64_t offset, const std::string& what)
    : std::runtime_error("pickle byte " + std::to_string(offset) + ": " + what), offset_(offset) {}

ValuePtr make_value(Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

ValuePtr Value::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  for (size_t i = 0; i + 1 < items.size(); i += 2)
    if (items[i]->kind == Kind::String && items[i]->text == key) return items[i + 1];
  return nullptr;
}

namespace {

// Modules whose globals are refused outright (they only appear in attacks). Other unknown
// globals stay inert.
bool is_forbidden_module(const std::string& m) {
  return m == "os" || m == "posix" || m == "nt" || m == "sys" || m == "subprocess" || m == "builtins" ||
         m == "__builtin__" || m == "shutil" || m == "socket" || m == "importlib" || m == "runpy";
}

bool is_allowed_builtin(const std::string& m, const std::string& n) {
  return (m == "builtins" || m == "__builtin__") &&
         (n == "set" || n == "frozenset" || n == "bytearray" || n == "complex" || n == "slice" ||
          // data constructors: protocol-2 pickles spell collections.defaultdict(dict) with them
          n == "dict" || n == "list" || n == "tuple" || n == "int" || n == "float" || n == "str" || n == "bool" ||
          n == "bytes" || n == "unicode" || n == "long" || n == "object" ||
          // Python >= 3.11 pickles an enum member (DeepSpeed's ZeroStageEnum, DCP's
          // _MEM_FORMAT_ENCODING) as getattr(EnumClass, "NAME"): kept as an inert Object whose
          // args name the class and the member, never called
          n == "getattr");
}

class Machine {
 public:
  Machine(const uint8_t* data, uint64_t size, const ReduceHook& hook, const ParseLimits& limits)
      : p_(data), size_(size), hook_(hook), limits_(limits), max_bytes_(byte_limit(size, limits)) {}

  ValuePtr run(uint64_t* consumed);

 private:
  [[noreturn]] void fail(const std::string& what) const { throw PickleError(op_pos_, what); }
  const uint8_t* take(uint64_t n) {
    if (n > size_ - pos_) fail("needs " + std::to_string(n) + " more bytes but only " + std::to_string(size_ - pos_) + " remain");
    const uint8_t* q = p_ + pos_;
    pos_ += n;
    return q;
  }
  uint64_t read_le(int n) {
    const uint8_t* q = take(static_cast<uint64_t>(n));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | q[i];
    return v;
  }
  std::string read_line() {
    const uint64_t start = pos_;
    while (pos_ < size_ && p_[pos_] != '\n') ++pos_;
    if (pos_ >= size_) fail("unterminated text argument");
    std::string s(reinterpret_cast<const char*>(p_ + start), pos_ - start);
    ++pos_;
    return s;
  }

  static uint64_t byte_limit(uint64_t size, const ParseLimits& limits) {
    if (limits.max_bytes != 0) return limits.max_bytes;
    return std::min(memory_budget(), size + (uint64_t{1} << 30));
  }
  /// Counts `n` more bytes held by values (never released: a running total of what was built).
  void charge(uint64_t n) {
    if (n > max_bytes_ || bytes_ > max_bytes_ - n)
      fail("the values would hold more than " + byte_size_text(max_bytes_) + " of memory (" +
           (limits_.max_bytes != 0 ? "the reader's limit" : "the pickle's size plus 1 GiB, or the memory budget if smaller") +
           "): a small pickle that copies its data many times is refused");
    bytes_ += n;
  }
  ValuePtr fresh(Kind k) {
    if (++values_ > limits_.max_values) fail("more than " + std::to_string(limits_.max_values) + " values");
    charge(sizeof(Value) + 16);  // the value and its shared_ptr control block
    return make_value(k);
  }
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    charge((stack_.size() - m) * sizeof(ValuePtr));
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }

  /// Makes `child` part of `parent`: checks depth and freezes the child.
  void adopt(Value& parent, const ValuePtr& child) {
    if (child.get() == &parent) fail("a container cannot contain itself");
    if (child->depth + 1 > limits_.max_depth) fail("nesting deeper than " + std::to_string(limits_.max_depth) + " levels");
    parent.depth = std::max(parent.depth, child->depth + 1);
    child->nested = true;
  }
  void check_mutable(const Value& v, const char* op) {
    if (v.nested) fail(std::string(op) + " on a container that is already nested in another (recursive structures are refused)");
  }
  ValuePtr container(Kind k, std::vector<ValuePtr> items) {
    charge(items.size() * sizeof(ValuePtr));  // set(x), list(x), ...: a copy of x's slots
    ValuePtr v = fresh(k);
    for (auto& c : items) adopt(*v, c);
    v->items = std::move(items);
    return v;
  }
  void append_items(const ValuePtr& target, std::vector<ValuePtr> items, const char* op) {
    check_mutable(*target, op);
    if (target->kind != Kind::List && target->kind != Kind::Set && target->kind != Kind::Object)
      fail(std::string(op) + " on a value that is not a list");
    for (auto& c : items) {
      adopt(*target, c);
      target->items.push_back(std::move(c));
    }
  }
  void set_items(const ValuePtr& target, std::vector<ValuePtr> kv, const char* op) {
    check_mutable(*target, op);
    if (kv.size() % 2) fail(std::string(op) + " with an odd number of items");
    if (target->kind != Kind::Dict && target->kind != Kind::Object) fail(std::string(op) + " on a value that is not a dict");
    for (auto& c : kv) {
      adopt(*target, c);
      target->items.push_back(std::move(c));
    }
  }
  void memo_put(uint64_t index) {
    // Picklers number memo slots 0, 1, 2, ...: an index beyond the limit is never legitimate.
    if (index >= limits_.max_memo) fail("memo index " + std::to_string(index) + " beyond the limit of " + std::to_string(limits_.max_memo));
    if (memo_.size() >= limits_.max_memo && !memo_.count(index)) fail("memo larger than " + std::to_string(limits_.max_memo) + " entries");
    if (!memo_.count(index)) charge(64);  // a hash-map node
    memo_[index] = top();
  }
  ValuePtr memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo index " + std::to_string(index) + " was never stored");
    return it->second;
  }
  ValuePtr make_global(const std::string& module, const std::string& name) {
    if (is_forbidden_module(module) && !is_allowed_builtin(module, name))
      fail("refused global " + module + "." + name + " (nothing is ever executed)");
    charge(module.size() + name.size());  // STACK_GLOBAL copies two (memoised) strings each time
    DangerousCallableLog::note(module, name);  // named, never called: the caller may warn
    ValuePtr g = fresh(Kind::Global);
    g->module = module;
    g->name = name;
    return g;
  }
  ValuePtr call(const ValuePtr& callable, const ValuePtr& args) {
    if (callable->kind != Kind::Global) fail("call of a value that is not a global");
    if (ValuePtr v = call_builtin(*callable, args)) return v;
    if (hook_) {
      if (ValuePtr r = hook_(*callable, args)) return r;
    }
    ValuePtr obj = fresh(Kind::Object);
    obj->module = callable->module;
    obj->name = callable->name;
    adopt(*obj, args);
    obj->args = args;
    return obj;
  }
  /// Pure-data builtins that pickles use to spell ordinary values: set([...]),
  /// frozenset([...]), bytearray(b), and _codecs.encode(text, 'latin1') for bytes at protocol 2.
  ValuePtr call_builtin(const Value& fn, const ValuePtr& args) {
    const bool builtins = fn.module == "builtins" || fn.module == "__builtin__";
    const Value* first = args->kind == Kind::Tuple && !args->items.empty() ? args->items[0].get() : nullptr;
    if (builtins && (fn.name == "set" || fn.name == "frozenset")) {
      if (!first) return fresh(Kind::Set);
      if (first->kind != Kind::List && first->kind != Kind::Tuple && first->kind != Kind::Set) fail(fn.name + "() of a non-sequence");
      return container(Kind::Set, first->items);
    }
    if (builtins && (fn.name == "dict" || fn.name == "list" || fn.name == "tuple")) {
      const Kind k = fn.name == "dict" ? Kind::Dict : fn.name == "list" ? Kind::List : Kind::Tuple;
      if (!first) return fresh(k);
      if (k == Kind::Dict ? first->kind != Kind::Dict : first->kind != Kind::List && first->kind != Kind::Tuple)
        fail(fn.name + "() of an unexpected value");
      return container(k, first->items);
    }
    if (builtins && fn.name == "bytearray" && first && first->kind == Kind::Bytes) {
      charge(first->text.size());
      ValuePtr b = fresh(Kind::Bytes);
      b->text = first->text;
      return b;
    }
    if (fn.module == "_codecs" && fn.name == "encode" && first && first->kind == Kind::String) {
      charge(first->text.size());
      ValuePtr b = fresh(Kind::Bytes);
      const std::string& s = first->text;  // UTF-8 of code points < 256 -> one byte each
      for (size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) { b->text += static_cast<char>(c); continue; }
        if ((c & 0xE0) != 0xC0 || i + 1 >= s.size()) fail("_codecs.encode of text outside latin-1");
        b->text += static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F));
      }
      return b;
    }
    return nullptr;
  }
  ValuePtr text_value(Kind k, uint64_t length) {
    ValuePtr v = fresh(k);
    const uint8_t* q = take(length);
    charge(length);
    v->text.assign(reinterpret_cast<const char*>(q), length);
    return v;
  }
  ValuePtr int_value(int64_t i) {
    ValuePtr v = fresh(Kind::Int);
    v->integer = i;
    return v;
  }
  ValuePtr long_value(uint64_t n);
  bool step();

  const uint8_t* p_;
  uint64_t size_, pos_ = 0, op_pos_ = 0, values_ = 0, bytes_ = 0;
  const ReduceHook& hook_;
  const ParseLimits& limits_;
  const uint64_t max_bytes_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  ValuePtr result_;
};

ValuePtr Machine::long_value(uint64_t n) {
  const uint8_t* q = take(n);
  if (n <= 8) {  // fits in int64 after sign extension
    uint64_t u = 0;
    for (uint64_t i = 0; i < n; ++i) u |= static_cast<uint64_t>(q[i]) << (8 * i);
    if (n > 0 && n < 8 && (q[n - 1] & 0x80)) u |= ~uint64_t{0} << (8 * n);
    return int_value(static_cast<int64_t>(u));
  }
  ValuePtr v = fresh(Kind::BigInt);
  v->text.assign(reinterpret_cast<const char*>(q), n);
  return v;
}

bool Machine::step() {
  op_pos_ = pos_;
  const uint8_t op = *take(1);
  switch (op) {
    case 0x80: { const uint64_t proto = read_le(1); if (proto > 5) fail("unsupported protocol " + std::to_string(proto)); break; }  // PROTO
    case 0x95: read_le(8); break;                                   // FRAME: a hint only
    case '.': result_ = pop(); return false;                         // STOP
    case '(': marks_.push_back(stack_.size()); break;                // MARK
    case '0': pop(); break;                                          // POP
    case '1': pop_to_mark(); break;                                  // POP_MARK
    case '2': push(top()); break;                                    // DUP
    case 'N': push(fresh(Kind::None)); break;
    case 0x88: case 0x89: { ValuePtr v = fresh(Kind::Bool); v->boolean = op == 0x88; push(v); break; }
    case 'J': push(int_value(static_cast<int32_t>(static_cast<uint32_t>(read_le(4))))); break;
    case 'K': push(int_value(static_cast<int64_t>(read_le(1)))); break;
    case 'M': push(int_value(static_cast<int64_t>(read_le(2)))); break;
    case 0x8a: push(long_value(read_le(1))); break;                  // LONG1
    case 0x8b: {                                                     // LONG4
      const uint64_t n = read_le(4);
      if (n > (uint64_t{1} << 20)) fail("LONG4 of " + std::to_string(n) + " bytes");
      push(long_value(n));
      break;
    }
    case 'I': {                                                      // INT (text; "01"/"00" are bools)
      const std::string s = read_line();
      if (s == "01" || s == "00") { ValuePtr v = fresh(Kind::Bool); v->boolean = s == "01"; push(v); break; }
      try { push(int_value(std::stoll(s))); } catch (const std::exception&) { fail("bad INT '" + s + "'"); }
      break;
    }
    case 'G': {                                                      // BINFLOAT, big-endian
      const uint8_t* q = take(8);
      uint64_t u = 0;
      for (int i = 0; i < 8; ++i) u = (u << 8) | q[i];
      ValuePtr v = fresh(Kind::Float);
      std::memcpy(&v->real, &u, 8);
      push(v);
      break;
    }
    case 'X': push(text_value(Kind::String, read_le(4))); break;     // BINUNICODE
    case 0x8c: push(text_value(Kind::String, read_le(1))); break;    // SHORT_BINUNICODE
    case 0x8d: push(text_value(Kind::String, read_le(8))); break;    // BINUNICODE8
    case 'T': push(text_value(Kind::String, read_le(4))); break;     // BINSTRING (py2 str)
    case 'U': push(text_value(Kind::String, read_le(1))); break;     // SHORT_BINSTRING
    case 'B': push(text_value(Kind::Bytes, read_le(4))); break;      // BINBYTES
    case 'C': push(text_value(Kind::Bytes, read_le(1))); break;      // SHORT_BINBYTES
    case 0x8e: case 0x96: push(text_value(Kind::Bytes, read_le(8))); break;  // BINBYTES8, BYTEARRAY8
    case ')': push(fresh(Kind::Tuple)); break;
    case 't': push(container(Kind::Tuple, pop_to_mark())); break;
    case 0x85: { auto a = pop(); push(container(Kind::Tuple, {a})); break; }
    case 0x86: { auto b = pop(), a = pop(); push(container(Kind::Tuple, {a, b})); break; }
    case 0x87: { auto c = pop(), b = pop(), a = pop(); push(container(Kind::Tuple, {a, b, c})); break; }
    case ']': push(fresh(Kind::List)); break;
    case 'l': push(container(Kind::List, pop_to_mark())); break;
    case 'a': { auto v = pop(); append_items(top(), {v}, "APPEND"); break; }
    case 'e': { auto items = pop_to_mark(); append_items(top(), std::move(items), "APPENDS"); break; }
    case '}': push(fresh(Kind::Dict)); break;
    case 'd': { auto kv = pop_to_mark(); ValuePtr d = fresh(Kind::Dict); set_items(d, std::move(kv), "DICT"); push(d); break; }
    case 's': { auto v = pop(), k = pop(); set_items(top(), {k, v}, "SETITEM"); break; }
    case 'u': { auto kv = pop_to_mark(); set_items(top(), std::move(kv), "SETITEMS"); break; }
    case 0x8f: push(fresh(Kind::Set)); break;                        // EMPTY_SET
    case 0x90: { auto items = pop_to_mark(); append_items(top(), std::move(items), "ADDITEMS"); break; }
    case 0x91: push(container(Kind::Set, pop_to_mark())); break;     // FROZENSET
    case 'c': { const std::string m = read_line(); const std::string n = read_line(); push(make_global(m, n)); break; }
    case 0x93: {                                                     // STACK_GLOBAL
      auto n = pop(), m = pop();
      if (m->kind != Kind::String || n->kind != Kind::String) fail("STACK_GLOBAL needs two strings");
      push(make_global(m->text, n->text));
      break;
    }
    case 'R': { auto args = pop(); auto fn = pop(); push(call(fn, args)); break; }  // REDUCE
    case 0x81: { auto args = pop(); auto cls = pop(); push(call(cls, args)); break; }  // NEWOBJ
    case 0x92: { auto kwargs = pop(); auto args = pop(); auto cls = pop(); (void)kwargs; push(call(cls, args)); break; }
    case 'b': {                                                      // BUILD
      auto state = pop();
      ValuePtr& obj = top();
      if (obj->kind == Kind::Object || obj->kind == Kind::Dict) {
        check_mutable(*obj, "BUILD");
        adopt(*obj, state);
        obj->state = state;
      }  // BUILD on anything else (e.g. a tensor reference) is ignored: its state is metadata
      break;
    }
    case 'Q': {                                                      // BINPERSID
      auto pid = pop();
      ValuePtr v = fresh(Kind::Persistent);
      adopt(*v, pid);
      v->args = pid;
      push(v);
      break;
    }
    case 'P': { ValuePtr v = fresh(Kind::Persistent); v->args = fresh(Kind::String); v->args->text = read_line(); push(v); break; }
    case 'q': memo_put(read_le(1)); break;                           // BINPUT
    case 'r': memo_put(read_le(4)); break;                           // LONG_BINPUT
    case 0x94: memo_put(memo_.size()); break;                        // MEMOIZE
    case 'p': {                                                      // PUT (text)
      const std::string s = read_line();
      try { memo_put(std::stoull(s)); } catch (const std::exception&) { fail("bad PUT index '" + s + "'"); }
      break;
    }
    case 'h': push(memo_get(read_le(1))); break;                     // BINGET
    case 'j': push(memo_get(read_le(4))); break;                     // LONG_BINGET
    case 'g': {                                                      // GET (text)
      const std::string s = read_line();
      try { push(memo_get(std::stoull(s))); } catch (const PickleError&) { throw; } catch (const std::exception&) { fail("bad GET index '" + s + "'"); }
      break;
    }
    default: {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", op);
      fail(std::string("unsupported opcode ") + buf + " (outside the subset torch checkpoints use)");
    }
  }
  return true;
}

ValuePtr Machine::run(uint64_t* consumed) {
  if (size_ == 0) throw PickleError(0, "empty pickle");
  while (step()) {
    if (pos_ >= size_) throw PickleError(pos_, "pickle ended without STOP");
  }
  if (consumed) *consumed = pos_;
  return result_;
}

}  // namespace

ValuePtr parse(const uint8_t* data, uint64_t size, const ReduceHook& hook, uint64_t* consumed, const ParseLimits& limits) {
  Machine m(data, size, hook, limits);
  return m.run(consumed);
}

}  // namespace muspec::pickle
