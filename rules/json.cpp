#include "rules/json.hpp"

#include "rules/json_escape.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <set>

#include <nlohmann/json.hpp>

namespace sluice::rules {

Json Json::boolean(bool b) {
  Json j;
  j.type_ = Type::Bool;
  j.bool_ = b;
  return j;
}

Json Json::number(double n) {
  Json j;
  j.type_ = Type::Number;
  j.number_ = n;
  return j;
}

Json Json::string(std::string s) {
  Json j;
  j.type_ = Type::String;
  j.string_ = std::move(s);
  return j;
}

Json Json::array(std::vector<Json> items) {
  Json j;
  j.type_ = Type::Array;
  j.items_ = std::move(items);
  return j;
}

Json Json::object(Members members) {
  Json j;
  j.type_ = Type::Object;
  j.members_ = std::move(members);
  return j;
}

std::optional<int64_t> Json::as_integer(int64_t min, int64_t max) const {
  if (type_ != Type::Number || !std::isfinite(number_) || std::floor(number_) != number_) return std::nullopt;
  if (number_ < static_cast<double>(min) || number_ > static_cast<double>(max)) return std::nullopt;
  return static_cast<int64_t>(number_);
}

const Json* Json::find(std::string_view key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& [k, v] : members_)
    if (k == key) return &v;
  return nullptr;
}

Json& Json::set(std::string key, Json value) {
  type_ = Type::Object;
  members_.emplace_back(std::move(key), std::move(value));
  return *this;
}

Json& Json::push(Json value) {
  type_ = Type::Array;
  items_.push_back(std::move(value));
  return *this;
}

// ---- printing -------------------------------------------------------------------

void Json::dump_to(std::string& out) const {
  switch (type_) {
    case Type::Null: out += "null"; return;
    case Type::Bool: out += bool_ ? "true" : "false"; return;
    case Type::Number: {
      if (!std::isfinite(number_)) {
        out += "null";  // JSON has no NaN or infinity
        return;
      }
      char buf[32];
      if (std::floor(number_) == number_ && std::fabs(number_) < 1e15)
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(number_));
      else
        std::snprintf(buf, sizeof buf, "%.15g", number_);
      out += buf;
      return;
    }
    case Type::String: append_json_string(out, string_); return;
    case Type::Array:
      out += '[';
      for (size_t i = 0; i < items_.size(); ++i) {
        if (i) out += ',';
        items_[i].dump_to(out);
      }
      out += ']';
      return;
    case Type::Object:
      out += '{';
      for (size_t i = 0; i < members_.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, members_[i].first);
        out += ':';
        members_[i].second.dump_to(out);
      }
      out += '}';
      return;
  }
}

std::string Json::dump() const {
  std::string out;
  dump_to(out);
  return out;
}

// ---- parsing --------------------------------------------------------------------
// nlohmann::json's SAX parser reads the text (RFC 8259, strict: UTF-8 checked, no comments, the
// whole input one value); this handler builds the Json and adds what nlohmann allows but we
// refuse: duplicate object keys, and nesting deeper than max_depth.

namespace {

// The text's bytes, one at a time, for nlohmann's lexer; remembers how far it has read, so the
// handler's own errors can name a byte offset too.
struct CountingIterator {
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;
  const char* p = nullptr;
  size_t* read = nullptr;
  reference operator*() const { return *p; }
  CountingIterator& operator++() {
    ++p;
    ++*read;
    return *this;
  }
  bool operator==(const CountingIterator& o) const { return p == o.p; }
  bool operator!=(const CountingIterator& o) const { return p != o.p; }
};

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return out;
}

}  // namespace

class JsonSax {
 public:
  using number_integer_t = nlohmann::json::number_integer_t;
  using number_unsigned_t = nlohmann::json::number_unsigned_t;
  using number_float_t = nlohmann::json::number_float_t;
  using string_t = nlohmann::json::string_t;
  using binary_t = nlohmann::json::binary_t;

  JsonSax(size_t max_depth, const size_t* read) : max_depth_(max_depth), read_(read) {}

  bool null() { return place(Json()); }
  bool boolean(bool b) { return place(Json::boolean(b)); }
  bool number_integer(number_integer_t n) { return place(Json::number(static_cast<double>(n))); }
  bool number_unsigned(number_unsigned_t n) { return place(Json::number(static_cast<double>(n))); }
  bool number_float(number_float_t n, const string_t&) { return place(Json::number(n)); }
  bool string(string_t& s) { return place(Json::string(std::move(s))); }
  bool binary(binary_t&) { return fail("binary values are not JSON"); }
  bool start_object(size_t) { return open(Json::object()); }
  bool start_array(size_t) { return open(Json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(string_t& k) {
    if (!keys_.back().insert(k).second) return fail("duplicate key \"" + printable(k) + "\"");
    key_ = std::move(k);
    return true;
  }
  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 4: syntax error while
    // parsing value - invalid literal; last read: 'tru'" -> "syntax error ... invalid literal"
    std::string what = e.what();
    if (auto b = what.find("] "); b != std::string::npos) what.erase(0, b + 2);
    if (what.rfind("parse error", 0) == 0)
      if (auto colon = what.find(": "); colon != std::string::npos) what.erase(0, colon + 2);
    if (auto last = what.find("; last read"); last != std::string::npos) what.erase(last);
    error_ = "at byte " + std::to_string(position > 0 ? position - 1 : 0) + ": " + what;
    return false;
  }

  Result<Json> result(bool ok) {
    if (!ok || !error_.empty()) return Err{error_.empty() ? std::string("at byte 0: not JSON") : error_};
    return std::move(root_);
  }

 private:
  bool fail(const std::string& what) {
    error_ = "at byte " + std::to_string(*read_) + ": " + what;
    return false;
  }
  // Where the next value goes: the top, the open array's end, or the open object under key_.
  Json* slot() {
    if (open_.empty()) return &root_;
    Json* top = open_.back();
    if (top->type_ == Json::Type::Array) {
      top->items_.emplace_back();
      return &top->items_.back();
    }
    top->members_.emplace_back(std::move(key_), Json());
    return &top->members_.back().second;
  }
  bool place(Json v) {
    *slot() = std::move(v);
    return true;
  }
  bool open(Json container) {
    if (open_.size() + 1 > max_depth_) return fail("nested deeper than " + std::to_string(max_depth_));
    Json* at = slot();
    *at = std::move(container);
    open_.push_back(at);  // stays valid: only the innermost open container grows
    keys_.emplace_back();
    return true;
  }
  bool close() {
    open_.pop_back();
    keys_.pop_back();
    return true;
  }

  size_t max_depth_;
  const size_t* read_;
  Json root_;
  std::vector<Json*> open_;
  std::vector<std::set<std::string>> keys_;  // per open container; used by objects
  std::string key_;
  std::string error_;
};

Result<Json> Json::parse(std::string_view text, size_t max_depth) {
  size_t read = 0;
  CountingIterator first{text.data(), &read}, last{text.data() + text.size(), &read};
  JsonSax sax(max_depth, &read);
  try {  // errors come to the handler; this is for what nlohmann might still throw (bad_alloc)
    bool ok = nlohmann::json::sax_parse(first, last, &sax, nlohmann::json::input_format_t::json, true, false);
    return sax.result(ok);
  } catch (const std::exception& e) {
    return Err{"at byte " + std::to_string(read) + ": " + e.what()};
  }
}

}  // namespace sluice::rules
