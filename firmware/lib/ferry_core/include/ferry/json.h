// A small, strict JSON reader (RFC 8259) and string escaper.
//
// Why not ArduinoJson: the core must build and be tested on a plain Debian host, where ArduinoJson
// is neither packaged nor fetchable (it is not on npm, and only npm and apt are reachable from CI),
// and signed manifests deserve a parser that refuses anything ambiguous. This one rejects what
// lenient parsers accept: duplicate keys (two readers could see different values), trailing
// commas, comments, leading zeros, NaN/Infinity, raw control characters, lone surrogates, invalid
// UTF-8 and trailing garbage. Inputs are bounded by size and nesting depth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::json {

enum class Type { Null, Bool, Number, String, Array, Object };

/// One parsed value. Numbers keep their exact lexeme so integers never pass through a double.
struct Value {
  Type type = Type::Null;
  bool boolean = false;
  std::string text;  ///< String contents (UTF-8) or the number's lexeme.
  std::vector<Value> items;
  std::vector<std::pair<std::string, Value>> members;

  bool is(Type t) const { return type == t; }
  /// Member by key, or nullptr (also when this is not an object).
  const Value* get(std::string_view key) const;
  /// A non-negative integer lexeme (no fraction, no exponent) that fits `max`.
  bool as_uint(uint64_t& out, uint64_t max = UINT64_MAX) const;
  /// as_uint() into a narrower type; `max` must fit in T. `out` is left alone on failure.
  template <typename T>
  bool as_uint_to(T& out, uint64_t max) const {
    uint64_t n = 0;
    if (!as_uint(n, max)) return false;
    out = static_cast<T>(n);
    return true;
  }
};

struct Limits {
  std::size_t max_bytes = 64 * 1024;
  int max_depth = 16;
};

/// Parses `text` into `out`. On failure returns false and, when `error` is given, sets it to a
/// message naming the byte offset, e.g. "duplicate key \"hw\" at byte 42".
bool parse(std::string_view text, Value& out, std::string* error = nullptr, const Limits& limits = {});

/// Appends `s` as a JSON string literal (with quotes) to `out`. Control characters are \u-escaped.
void append_string(std::string& out, std::string_view s);

}  // namespace ferry::json
