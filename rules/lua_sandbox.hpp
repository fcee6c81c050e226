// One sandboxed Lua 5.4 state: a capped allocator, only the base, string,
// table, math and utf8 libraries (no io, os, package/require, debug,
// coroutine, bytecode loading, garbage-collector control or finalizers), and
// an instruction budget per protected call.
//
// Lua reports errors with longjmp: code passed to call() must not keep C++
// objects with destructors alive across a Lua API call that can raise, and must
// not let a C++ exception out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct lua_State;
struct lua_Debug;

namespace sluice::rules {

struct LuaLimits {
  // VM instructions per hook call: about 1 ms of plain Lua on a current x86 core
  // (bench/README.md); instructions that call into C (string building) cost more.
  int64_t instruction_budget = 250000;
  size_t memory_bytes = 32u * 1024 * 1024;  // per state
};

class LuaSandbox {
 public:
  // Null (and *error set) when the state cannot be made within the memory cap.
  static std::unique_ptr<LuaSandbox> create(const LuaLimits& limits, std::string* error);
  ~LuaSandbox();
  LuaSandbox(const LuaSandbox&) = delete;
  LuaSandbox& operator=(const LuaSandbox&) = delete;

  lua_State* state() const { return L_; }
  const LuaLimits& limits() const { return limits_; }
  size_t memory_used() const;

  enum class Failure { None, Error, Budget, Memory };
  struct Outcome {
    Failure failure = Failure::None;
    std::string message;  // "script.lua:12: message" where a position is known
  };
  // Runs fn(L) with `arg` as its only argument (a light userdata), in protected
  // mode, with the instruction budget armed for scripts it calls. Lua errors,
  // an exhausted budget and the memory cap all come back as an Outcome.
  Outcome call(int (*fn)(lua_State*), void* arg);

 private:
  struct Alloc;
  LuaSandbox() = default;
  static void* allocate(void* ud, void* ptr, size_t osize, size_t nsize);
  static void budget_hook(lua_State* L, lua_Debug* ar);
  static int message_handler(lua_State* L);

  lua_State* L_ = nullptr;
  LuaLimits limits_;
  std::unique_ptr<Alloc> alloc_;
};

}  // namespace sluice::rules
