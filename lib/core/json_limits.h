// The one way muspec parses JSON it did not write (laws.json, schedule files, config.json,
// manifests, safetensors headers and indexes): nesting is limited *while* parsing, so a
// hostile file cannot overflow the stack later (nlohmann::json copies, compares, dumps and
// destroys values recursively), and the parse is linear in the input size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace muspec {

struct JsonLimits {
  /// Containers (objects and arrays) nested inside each other, the outermost counting 1.
  int max_depth = 64;
  /// Refuse an object that names a key twice (nlohmann would silently keep the last value).
  bool reject_duplicate_keys = false;
  /// Prefix of a syntax-error reason ("invalid JSON: ..."), e.g. "invalid header JSON".
  std::string syntax_label = "invalid JSON";
};

/// Parses `text`. Throws InputError(source, "", reason) for a syntax error, nesting deeper
/// than limits.max_depth ("JSON nests deeper than 64 levels") or, when asked, a duplicate key
/// ("duplicate JSON key 'k'"). Nothing deeper than the limit is ever built.
nlohmann::json parse_json_limited(std::string_view text, const std::string& source, const JsonLimits& limits = {});

/// Reads the regular file `path` (FIFOs and devices refused, see core/regular_file.h) and
/// parses it with parse_json_limited(); errors name `path`.
nlohmann::json read_json_file(const std::string& path, const JsonLimits& limits = {});

}  // namespace muspec
