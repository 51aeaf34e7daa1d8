#include "core/json_limits.h"

#include <vector>

#include "core/error.h"
#include "core/regular_file.h"

namespace muspec {

namespace {

using nlohmann::json;

/// Builds the document from SAX events, like nlohmann's own DOM parser, but refuses a
/// container past the depth limit before creating it and checks keys as they arrive.
/// Why not parse() with a callback: in callback mode nlohmann rescans the parent object
/// after every member, which makes a 10^5-entry safetensors header take minutes.
class LimitedDomBuilder : public nlohmann::json_sax<json> {
 public:
  LimitedDomBuilder(json& root, const std::string& source, const JsonLimits& limits)
      : root_(root), source_(source), limits_(limits) {}

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override { return value(v); }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool string(string_t& v) override { return value(std::move(v)); }
  bool binary(binary_t& v) override { return value(json(std::move(v))); }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    json& object = *stack_.back();
    if (limits_.reject_duplicate_keys && object.contains(k)) reject("duplicate JSON key '" + k + "'");
    slot_ = &object[k];
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    reject(limits_.syntax_label + ": " + e.what());
  }

 private:
  [[noreturn]] void reject(const std::string& reason) const { throw InputError(source_, "", reason); }

  /// Stores a value where the document expects the next one; returns where it went. Pointers
  /// to open containers stay valid: only the innermost open container grows.
  json* put(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    *slot_ = std::move(v);
    return slot_;
  }

  bool value(json&& v) {
    put(std::move(v));
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  bool open(json&& container) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth)
      reject("JSON nests deeper than " + std::to_string(limits_.max_depth) + " levels");
    stack_.push_back(put(std::move(container)));
    return true;
  }

  json& root_;
  const std::string& source_;
  const JsonLimits& limits_;
  std::vector<json*> stack_;  ///< open containers, outermost first
  json* slot_ = nullptr;      ///< the member the last key created
};

}  // namespace

json parse_json_limited(std::string_view text, const std::string& source, const JsonLimits& limits) {
  json root;
  LimitedDomBuilder builder(root, source, limits);
  json::sax_parse(text.begin(), text.end(), &builder);
  return root;
}

json read_json_file(const std::string& path, const JsonLimits& limits) {
  return parse_json_limited(read_regular_file(path), path, limits);
}

}  // namespace muspec
