// A tiny builder for one-line JSON objects (decision log, events).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "rules/json_escape.hpp"

namespace sluice::proxy {

class JsonLine {
 public:
  JsonLine() {
    out_.reserve(384);
    out_ += '{';
  }
  JsonLine& str(std::string_view key, std::string_view value) {
    key_(key);
    quote(value);
    return *this;
  }
  JsonLine& num(std::string_view key, int64_t value) {
    key_(key);
    out_ += std::to_string(value);
    return *this;
  }
  JsonLine& real(std::string_view key, double value) {
    key_(key);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", value);
    out_ += buf;
    return *this;
  }
  JsonLine& boolean(std::string_view key, bool value) {
    key_(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  // Inserts an already-serialised JSON value (object or array).
  JsonLine& raw(std::string_view key, std::string_view json) {
    key_(key);
    out_ += json;
    return *this;
  }
  std::string done() {
    out_ += '}';
    return std::move(out_);
  }

 private:
  // Keys are the code's own identifiers: nothing in them needs escaping.
  void key_(std::string_view k) {
    if (out_.size() > 1) out_ += ',';
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
  void quote(std::string_view s) {
    out_ += '"';
    rules::append_json_escaped(out_, s);
    out_ += '"';
  }
  std::string out_;
};

}  // namespace sluice::proxy
