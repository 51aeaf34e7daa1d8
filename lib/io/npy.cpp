#include "io/npy.h"
#include "io/page_release.h"

#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "core/error.h"
#include "io/mapped_file.h"

namespace muspec {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr int kMaxLiteralDepth = 16;

/// A Python literal value from the header dict.
struct PyValue {
  enum Kind { Str, Int, Bool, None, Tuple, List } kind = None;
  std::string text;  ///< Str: the characters; otherwise the source text of the value
  int64_t integer = 0;
  bool boolean = false;
  std::vector<PyValue> items;  ///< Tuple / List
};

/// Recursive-descent parser for the dict literal grammar numpy writes:
///   dict  := '{' [ str ':' value (',' str ':' value)* [','] ] '}'
///   value := str | int | True | False | None | '(' seq ')' | '[' seq ']'
/// Strings are single- or double-quoted without escapes; ints are decimal with an optional
/// '-' and an optional Python 2 'L' suffix. `(x)` is x, not a tuple, as in Python.
class LiteralParser {
 public:
  LiteralParser(std::string_view text, const std::string& file, const std::string& tensor)
      : s_(text), file_(file), tensor_(tensor) {}

  /// Parses the whole header: one dict, then only whitespace.
  std::vector<std::pair<std::string, PyValue>> dict() {
    std::vector<std::pair<std::string, PyValue>> out;
    expect('{');
    while (!peek_is('}')) {
      PyValue key = value(0);
      if (key.kind != PyValue::Str) fail("dict key is not a string");
      expect(':');
      out.emplace_back(key.text, value(0));
      if (!peek_is(',')) break;
      ++i_;
    }
    expect('}');
    skip_space();
    if (i_ != s_.size()) fail("unexpected text after the dict");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw InputError(file_, tensor_, "malformed .npy header at offset " + std::to_string(i_) + ": " + why);
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool peek_is(char c) {
    skip_space();
    return i_ < s_.size() && s_[i_] == c;
  }
  void expect(char c) {
    if (!peek_is(c)) fail(std::string("expected '") + c + "'");
    ++i_;
  }

  PyValue value(int depth) {
    if (depth > kMaxLiteralDepth) fail("literal nests too deeply");
    skip_space();
    if (i_ >= s_.size()) fail("unexpected end of header");
    const size_t start = i_;
    PyValue v;
    const char c = s_[i_];
    if (c == '\'' || c == '"') v = string();
    else if (c == '-' || (c >= '0' && c <= '9')) v = integer();
    else if (c == '(' || c == '[') v = sequence(depth);
    else v = keyword();
    if (v.kind != PyValue::Str) v.text = std::string(s_.substr(start, i_ - start));
    return v;
  }

  PyValue string() {
    const char quote = s_[i_++];
    const size_t end = s_.find(quote, i_);
    if (end == std::string_view::npos) fail("unterminated string");
    PyValue v;
    v.kind = PyValue::Str;
    v.text = std::string(s_.substr(i_, end - i_));
    if (v.text.find('\\') != std::string::npos) fail("string escapes are not supported");
    i_ = end + 1;
    return v;
  }

  PyValue integer() {
    const bool negative = s_[i_] == '-';
    if (negative) ++i_;
    if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') fail("expected a digit");
    uint64_t mag = 0;
    for (; i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; ++i_)
      if (!checked_mul(mag, 10, &mag) || !checked_add(mag, static_cast<uint64_t>(s_[i_] - '0'), &mag) ||
          mag > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("integer does not fit in 64 bits");
    if (i_ < s_.size() && (s_[i_] == 'L' || s_[i_] == 'l')) ++i_;  // Python 2 long literal
    PyValue v;
    v.kind = PyValue::Int;
    v.integer = negative ? -static_cast<int64_t>(mag) : static_cast<int64_t>(mag);
    return v;
  }

  PyValue sequence(int depth) {
    const char close = s_[i_] == '(' ? ')' : ']';
    ++i_;
    PyValue v;
    v.kind = close == ')' ? PyValue::Tuple : PyValue::List;
    bool trailing_comma = false;
    while (!peek_is(close)) {
      v.items.push_back(value(depth + 1));
      trailing_comma = peek_is(',');
      if (!trailing_comma) break;
      ++i_;
    }
    expect(close);
    if (v.kind == PyValue::Tuple && v.items.size() == 1 && !trailing_comma) return v.items[0];  // (x)
    return v;
  }

  PyValue keyword() {
    PyValue v;
    for (const char* word : {"True", "False", "None"}) {
      const size_t n = std::strlen(word);
      if (s_.substr(i_, n) == word) {
        i_ += n;
        v.kind = word[0] == 'N' ? PyValue::None : PyValue::Bool;
        v.boolean = word[0] == 'T';
        return v;
      }
    }
    fail("unexpected character '" + std::string(1, s_[i_]) + "'");
  }

  std::string_view s_;
  const std::string& file_;
  const std::string& tensor_;
  size_t i_ = 0;
};

/// Fills dtype / byte_order / item_size (or `unsupported`) from a descr string.
void interpret_descr(NpyHeader* h) {
  std::string d = h->descr;
  char order = '=';
  if (!d.empty() && std::strchr("<>|=", d[0]) != nullptr) {
    order = d[0];
    d.erase(0, 1);
  }
  struct Known { const char* code; DType type; uint64_t size; };
  static const Known kKnown[] = {
      {"f2", DType::F16, 2}, {"f4", DType::F32, 4}, {"f8", DType::F64, 8},
      {"i1", DType::I8, 1},  {"i2", DType::I16, 2}, {"i4", DType::I32, 4}, {"i8", DType::I64, 8},
      {"u1", DType::U8, 1},  {"u2", DType::U16, 2}, {"u4", DType::U32, 4}, {"u8", DType::U64, 8},
      {"b1", DType::BOOL, 1}, {"c8", DType::C64, 8}, {"c16", DType::C128, 16}};
  for (const auto& k : kKnown)
    if (d == k.code) {
      h->dtype = k.type;
      h->item_size = k.size;
      const bool native_big = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
      h->byte_order = (order == '>' || (order != '<' && native_big)) ? ByteOrder::Big : ByteOrder::Little;
      return;
    }
  const char kind = d.empty() ? '?' : d[0];
  const std::string quoted = "'" + h->descr + "'";
  if (kind == 'O') h->unsupported = "object arrays hold Python pickles, which muspec never loads";
  else if (kind == 'V')
    h->unsupported = "opaque void dtype " + quoted + " (e.g. bfloat16 or fp8 from ml_dtypes) is not supported";
  else if (kind == 'U' || kind == 'S' || kind == 'a') h->unsupported = "string dtype " + quoted + " is not supported";
  else if (kind == 'M' || kind == 'm') h->unsupported = "datetime dtype " + quoted + " is not supported";
  else h->unsupported = "dtype '" + h->descr + "' is not supported";
}

void interpret_dict(const std::vector<std::pair<std::string, PyValue>>& dict, NpyHeader* h,
                    const std::string& file, const std::string& tensor) {
  const auto bad = [&](const std::string& why) { throw InputError(file, tensor, ".npy header " + why); };
  std::set<std::string> seen;
  for (const auto& [key, v] : dict) {
    if (!seen.insert(key).second) bad("repeats the key '" + key + "'");
    if (key == "descr") {
      if (v.kind == PyValue::Str) {
        h->descr = v.text;
        interpret_descr(h);
      } else if (v.kind == PyValue::List) {
        h->descr = v.text;
        h->unsupported = "structured dtype " + v.text + " is not supported";
      } else {
        bad("has a descr that is neither a string nor a list");
      }
    } else if (key == "fortran_order") {
      if (v.kind != PyValue::Bool) bad("has a fortran_order that is not True or False");
      h->fortran_order = v.boolean;
    } else if (key == "shape") {
      if (v.kind != PyValue::Tuple) bad("has a shape that is not a tuple: " + v.text);
      for (const auto& d : v.items) {
        if (d.kind != PyValue::Int) bad("has a shape entry that is not an integer: " + d.text);
        if (d.integer < 0) bad("has a negative dimension " + std::to_string(d.integer));
        h->shape.push_back(d.integer);
      }
    } else {
      bad("has an unexpected key '" + key + "'");
    }
  }
  if (seen.size() != 3) bad("must have exactly the keys 'descr', 'fortran_order' and 'shape'");
}

/// Strides in elements for `shape`, row- or column-major. A zero-size array gets unit strides
/// (nothing is reachable, and the products could otherwise overflow).
std::vector<int64_t> strides_for(const std::vector<int64_t>& shape, bool column_major) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t d : shape)
    if (d == 0) return strides;
  int64_t step = 1;  // numel fits in int64: checked by npy_data_bytes
  for (size_t k = 0; k < shape.size(); ++k) {
    const size_t i = column_major ? k : shape.size() - 1 - k;
    strides[i] = step;
    step *= shape[i];
  }
  return strides;
}

/// One .npy file, memory-mapped.
class NpyFile : public TensorSource {
 public:
  explicit NpyFile(const std::string& path) : path_(path), file_(MappedFile::open(path)) {
    const std::string name = std::filesystem::path(path).stem().string();
    header_ = parse_npy_header(file_->data(), file_->size(), path_, name);
    const uint64_t data_size = file_->size() - header_.data_offset;
    check_npy_data_size(header_, data_size, path_, name);
    entries_.push_back(npy_entry(header_, name, path_, data_size));
  }
  const std::string& path() const override { return path_; }
  const std::vector<TensorEntry>& entries() const override { return entries_; }
  TensorHandle load(size_t index) const override {
    if (index != 0) throw UsageError("tensor index " + std::to_string(index) + " out of range for " + path_);
    TensorHandle h;
    h.view = npy_view(header_, file_->data() + header_.data_offset, entries_[0].nbytes, path_,
                      entries_[0].name);
    h.keepalive = keep_mapped_range(file_, h.view.data, entries_[0].nbytes);
    return h;
  }

 private:
  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  NpyHeader header_;
  std::vector<TensorEntry> entries_;
};

}  // namespace

bool has_npy_magic(const uint8_t* bytes, uint64_t size) {
  return size >= 6 && std::memcmp(bytes, kMagic, 6) == 0;
}

NpyHeader parse_npy_header(const uint8_t* bytes, uint64_t size, const std::string& file,
                           const std::string& tensor) {
  if (!has_npy_magic(bytes, size)) throw InputError(file, tensor, "not an .npy file (bad magic)");
  if (size < 10) throw InputError(file, tensor, ".npy preamble is truncated");
  NpyHeader h;
  h.major = bytes[6];
  h.minor = bytes[7];
  if ((h.major < 1 || h.major > 3) || h.minor != 0)
    throw InputError(file, tensor, "unsupported .npy format version " + std::to_string(h.major) + "." +
                                       std::to_string(h.minor));
  const uint64_t preamble = h.major == 1 ? 10 : 12;
  if (size < preamble) throw InputError(file, tensor, ".npy preamble is truncated");
  const uint64_t len = h.major == 1 ? load_le16(bytes + 8) : load_le32(bytes + 8);
  if (len > kNpyMaxHeaderBytes)
    throw InputError(file, tensor, ".npy header of " + std::to_string(len) + " bytes exceeds the limit of " +
                                       std::to_string(kNpyMaxHeaderBytes));
  if (len > size - preamble)
    throw InputError(file, tensor, ".npy header of " + std::to_string(len) + " bytes runs past the end (" +
                                       std::to_string(size) + " bytes available)");
  h.data_offset = preamble + len;
  const std::string_view text(reinterpret_cast<const char*>(bytes + preamble), len);
  interpret_dict(LiteralParser(text, file, tensor).dict(), &h, file, tensor);
  return h;
}

uint64_t npy_data_bytes(const NpyHeader& h, const std::string& file, const std::string& tensor) {
  if (!h.dtype) throw InputError(file, tensor, h.unsupported);
  uint64_t n = h.item_size;
  for (int64_t d : h.shape)
    if (!checked_mul(n, static_cast<uint64_t>(d), &n) || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw InputError(file, tensor, "array size overflows 64 bits");
  return n;
}

void check_npy_data_size(const NpyHeader& h, uint64_t data_size, const std::string& file,
                         const std::string& tensor) {
  if (!h.dtype) return;
  const uint64_t want = npy_data_bytes(h, file, tensor);
  if (data_size == want) return;
  std::string shape = "(";
  for (int64_t d : h.shape) shape += std::to_string(d) + ", ";
  shape += ")";
  const std::string what = "'" + h.descr + "' " + shape + " needs " + std::to_string(want) + " data bytes but ";
  if (data_size < want)
    throw InputError(file, tensor, "data is truncated: " + what + "only " + std::to_string(data_size) + " are present");
  throw InputError(file, tensor, what + std::to_string(data_size) + " are present (" +
                                     std::to_string(data_size - want) + " trailing bytes)");
}

TensorView npy_view(const NpyHeader& h, const uint8_t* data, uint64_t data_size,
                    const std::string& file, const std::string& tensor) {
  check_npy_data_size(h, data_size, file, tensor);
  if (!h.dtype) throw InputError(file, tensor, h.unsupported);
  TensorView v;
  v.dtype = *h.dtype;
  v.byte_order = h.byte_order;
  v.shape = h.shape;
  v.strides = strides_for(h.shape, h.fortran_order);
  v.data = data;
  v.reachable_bytes = data_size;
  const std::string problem = v.bounds_problem();
  if (!problem.empty()) throw InputError(file, tensor, problem);
  return v;
}

TensorEntry npy_entry(const NpyHeader& h, const std::string& name, const std::string& file,
                      uint64_t data_size) {
  TensorEntry e;
  e.name = name;
  e.file = file;
  e.dtype = h.dtype;
  e.dtype_label = h.descr;
  e.unsupported = h.unsupported;
  e.shape = h.shape;
  e.nbytes = data_size;
  return e;
}

std::unique_ptr<TensorSource> open_npy(const std::string& path) {
  return std::make_unique<NpyFile>(path);
}

}  // namespace muspec
