// A small JSON value: parsed from control-API bodies and the state file, printed for their
// answers. Parsing is nlohmann::json's (RFC 8259 with no extensions: UTF-8 checked, no comments,
// no trailing commas) plus two refusals of our own: duplicate object keys, and nesting deeper
// than max_depth.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rules/result.hpp"

namespace sluice::rules {

class JsonSax;

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Members = std::vector<std::pair<std::string, Json>>;

  Json() = default;
  static Json null() { return Json(); }
  static Json boolean(bool b);
  static Json number(double n);
  static Json string(std::string s);
  static Json array(std::vector<Json> items = {});
  static Json object(Members members = {});

  // The whole text must be one value (surrounding whitespace allowed). Errors
  // name the byte offset: "at byte 17: expected ':' after an object key".
  static Result<Json> parse(std::string_view text, size_t max_depth = 64);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  // A number that is a whole value in [min, max], or nothing.
  std::optional<int64_t> as_integer(int64_t min, int64_t max) const;
  const std::string& as_string() const { return string_; }
  const std::vector<Json>& items() const { return items_; }
  const Members& members() const { return members_; }
  // Object member by key, or nullptr (also for non-objects).
  const Json* find(std::string_view key) const;

  // Builders for objects and arrays.
  Json& set(std::string key, Json value);  // appends (the caller keeps keys unique)
  Json& push(Json value);

  // Compact one-line text; strings escaped by rules/json_escape.hpp (control bytes escaped).
  std::string dump() const;
  void dump_to(std::string& out) const;

 private:
  friend class JsonSax;  // the parser's handler builds values in place
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<Json> items_;
  Members members_;
};

}  // namespace sluice::rules
