// The credential gateway's body filter (docs/credentials.md, `replace_body`): every occurrence of
// a stand-in in a request body becomes its secret, however the body arrives in pieces. Each
// stand-in is as long as its secret (the config requires it), so a body's length never changes:
// a Content-Length stays true and chunked bodies are chunked again as they pass. Pure.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::rules {

class BodyReplacer {
 public:
  // Adds a pair; `stand_in` and `secret` must have the same, non-zero length.
  void add(std::string stand_in, std::string secret);
  bool empty() const { return pairs_.empty(); }

  // The next piece of the body: returns what may go on now. Up to (longest stand-in - 1) bytes
  // are held back, since a stand-in may begin in them and end in the next piece.
  std::string feed(std::string_view data);
  // The end of the body: the bytes held back.
  std::string finish();
  size_t bytes_in() const { return bytes_in_; }
  size_t replaced() const { return replaced_; }

 private:
  struct Pair {
    std::string stand_in, secret;
  };
  std::vector<Pair> pairs_;
  size_t hold_ = 0;  // longest stand-in - 1
  std::string pending_;
  size_t bytes_in_ = 0;
  size_t replaced_ = 0;
};

}  // namespace sluice::rules
