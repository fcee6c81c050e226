// Resolvers for tests that drive a dialer or a session on a real libuv loop: one that
// answers from a table the test fills, one for tests that never resolve.
#pragma once
#include <uv.h>

#include <map>
#include <string>
#include <utility>

#include "proxy/resolver.hpp"
#include "rules/ip.hpp"

namespace sluice::proxy::test {

// Answers from a table, always later on the loop (as the real one does); a name not in the
// table is NXDOMAIN. Counts the questions.
class TableResolver final : public Resolver {
 public:
  // One name's answer: a whole result (several addresses, a DNS time) or, the common case,
  // one address literal that resolved. Both convert implicitly so a table reads
  // `answers["a.test"] = "127.0.0.1"`.
  struct Answer {
    ResolveResult result;
    Answer() = default;
    Answer(ResolveResult r) : result(std::move(r)) {}
    Answer(const char* address) {
      result.ok = true;
      result.addrs.push_back(rules::IpAddr::parse(address).value());
    }
  };

  explicit TableResolver(uv_loop_t* loop) : loop_(loop) {}
  std::map<std::string, Answer> answers;
  int asked = 0;

  void resolve(const std::string& name, Callback cb) override {
    ++asked;
    ResolveResult r;
    if (auto it = answers.find(name); it != answers.end())
      r = it->second.result;
    else
      r.error = "NXDOMAIN";
    auto* t = new uv_timer_t{};
    t->data = new Pending{std::move(r), std::move(cb)};
    uv_timer_init(loop_, t);
    uv_timer_start(
        t,
        [](uv_timer_t* h) {
          auto* p = static_cast<Pending*>(h->data);
          p->cb(std::move(p->r));
          delete p;
          uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_timer_t*>(x); });
        },
        0, 0);
  }

 private:
  struct Pending {
    ResolveResult r;
    Callback cb;
  };
  uv_loop_t* loop_;
};

// For tests that never resolve a name: any question fails at once. Made on the worker's loop
// like every resolver here, it has no use for it.
class NoResolver final : public Resolver {
 public:
  explicit NoResolver(uv_loop_t*) {}
  void resolve(const std::string&, Callback cb) override {
    ResolveResult r;
    r.error = "no resolver in this test";
    cb(std::move(r));
  }
};

}  // namespace sluice::proxy::test
