#include "rules/lua_sandbox.hpp"

#include <lua.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice::rules {

// Memory accounting for one state. Past `cap` the running script is stopped at
// its next instruction, with its position; `hard` is a little further, where
// allocations fail outright (a single huge string.rep never gets that far in).
struct LuaSandbox::Alloc {
  size_t used = 0;
  size_t cap = 0;
  size_t hard = 0;
  lua_State* L = nullptr;
  int64_t budget = 0;
  bool armed = false;      // inside call(): the hook may be re-armed from here
  bool over = false;       // `cap` was passed
  bool exhausted = false;  // the instruction budget ran out during this call
};

namespace {

// "name:12: ..." at the start of a message: Lua already said where.
bool has_position(const char* msg) {
  const char* p = msg;
  while (*p && *p != ':' && *p != '\n') ++p;
  if (*p != ':' || p == msg) return false;
  ++p;
  const char* digits = p;
  while (*p >= '0' && *p <= '9') ++p;
  return p > digits && *p == ':';
}

[[noreturn]] int unexpected_panic(lua_State* L) {
  const char* msg = lua_tostring(L, -1);
  std::fprintf(stderr, "sluice: unprotected Lua error (a bug in sluice): %s\n", msg ? msg : "?");
  std::abort();
}

// load(chunk [, name [, mode [, env]]]) for text only: no precompiled bytecode.
int safe_load(lua_State* L) {
  int n = lua_gettop(L);
  if (n >= 3 && !lua_isnil(L, 3)) {
    const char* mode = lua_tostring(L, 3);
    if (mode == nullptr || std::strcmp(mode, "t") != 0)
      return luaL_error(L, "load: only text chunks are allowed (mode \"t\")");
  }
  if (n < 3) lua_settop(L, 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// setmetatable without __gc: a finalizer would run at an arbitrary later time,
// outside the call whose budget should pay for it.
int safe_setmetatable(lua_State* L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "setmetatable: __gc finalizers are not allowed");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

// collectgarbage("count") only: scripts may look at their memory, not steer the collector.
int gc_count_only(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "collect");
  if (std::strcmp(opt, "count") != 0) return luaL_error(L, "collectgarbage: only \"count\" is allowed in sluice rules");
  lua_pushnumber(L, static_cast<lua_Number>(lua_gc(L, LUA_GCCOUNT, 0)) +
                        static_cast<lua_Number>(lua_gc(L, LUA_GCCOUNTB, 0)) / 1024.0);
  return 1;
}

int open_safe_libs(lua_State* L) {
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  lua_settop(L, 0);
  // Base functions that read files, write to stdout or control the VM.
  for (const char* name : {"dofile", "loadfile", "print", "warn"}) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_getglobal(L, "load");
  lua_pushcclosure(L, safe_load, 1);
  lua_setglobal(L, "load");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, safe_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  lua_pushcfunction(L, gc_count_only);
  lua_setglobal(L, "collectgarbage");
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");  // bytecode out is useless when bytecode cannot come in
  lua_pop(L, 1);
  return 0;
}

}  // namespace

void* LuaSandbox::allocate(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* a = static_cast<Alloc*>(ud);
  size_t old = ptr != nullptr ? osize : 0;  // for a new block, osize encodes a type
  if (nsize == 0) {
    std::free(ptr);
    a->used -= old;
    return nullptr;
  }
  if (nsize > old) {
    size_t grow = nsize - old;
    if (a->used + grow > a->hard) return nullptr;  // Lua raises "not enough memory"
    if (a->used + grow > a->cap && !a->over) {
      a->over = true;
      // Stop the script at its next instruction, where its position is known.
      if (a->armed && a->L != nullptr) lua_sethook(a->L, budget_hook, LUA_MASKCOUNT, 1);
    }
  }
  void* p = std::realloc(ptr, nsize);
  if (p == nullptr) return nullptr;
  a->used = a->used - old + nsize;
  return p;
}

void LuaSandbox::budget_hook(lua_State* L, lua_Debug* ar) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  auto* a = static_cast<Alloc*>(ud);
  // Fire again at every instruction: a script that catches this error with
  // pcall cannot run on, its next instruction outside pcall fails too.
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  lua_getinfo(L, "Sl", ar);
  if (a->over) {
    lua_pushfstring(L, "%s:%d: memory cap of %d KiB exceeded", ar->short_src, ar->currentline,
                    static_cast<int>(a->cap / 1024));
  } else {
    a->exhausted = true;
    lua_pushfstring(L, "%s:%d: instruction budget of %I instructions exhausted", ar->short_src, ar->currentline,
                    static_cast<lua_Integer>(a->budget));
  }
  lua_error(L);
}

// Adds the position of the innermost Lua function when the message lacks one
// (error(x, 0), error({...}), errors raised from C).
int LuaSandbox::message_handler(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  if (msg == nullptr) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  if (!has_position(msg)) {
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar) != 0; ++level) {
      lua_getinfo(L, "Sl", &ar);
      if (ar.currentline > 0) {
        msg = lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
        break;
      }
    }
  }
  lua_pushstring(L, msg);
  return 1;
}

std::unique_ptr<LuaSandbox> LuaSandbox::create(const LuaLimits& limits, std::string* error) {
  std::unique_ptr<LuaSandbox> sb(new LuaSandbox);
  sb->limits_ = limits;
  sb->alloc_ = std::make_unique<Alloc>();
  Alloc& a = *sb->alloc_;
  a.cap = limits.memory_bytes;
  a.hard = a.cap + a.cap / 4 + 64 * 1024;
  a.budget = limits.instruction_budget;
  sb->L_ = lua_newstate(allocate, &a);
  if (sb->L_ == nullptr) {
    if (error) *error = "cannot create a Lua state within " + std::to_string(a.cap / 1024) + " KiB";
    return nullptr;
  }
  a.L = sb->L_;
  lua_atpanic(sb->L_, unexpected_panic);
  // Generational collection: a connection's tables die young, and minor collections are
  // what such garbage costs least to collect (measured: mean cost of a new connection's
  // on_connect with cold caches 3.1 -> 2.0 us, p99 22 -> 7 us; bench/README.md).
  lua_gc(sb->L_, LUA_GCGEN, 0, 0);
  Outcome o = sb->call(open_safe_libs, nullptr);
  if (o.failure != Failure::None) {
    if (error) *error = "cannot set up a Lua state: " + o.message;
    return nullptr;
  }
  return sb;
}

LuaSandbox::~LuaSandbox() {
  if (L_ != nullptr) lua_close(L_);
}

size_t LuaSandbox::memory_used() const { return alloc_->used; }

LuaSandbox::Outcome LuaSandbox::call(int (*fn)(lua_State*), void* arg) {
  Alloc& a = *alloc_;
  const int top = lua_gettop(L_);
  a.armed = true;
  a.exhausted = false;
  a.over = a.used > a.cap;
  int count = static_cast<int>(std::min<int64_t>(a.budget, 0x7fffffff));
  lua_sethook(L_, budget_hook, LUA_MASKCOUNT, a.over ? 1 : count);
  lua_pushcfunction(L_, message_handler);
  lua_pushcfunction(L_, fn);
  lua_pushlightuserdata(L_, arg);
  int status = lua_pcall(L_, 1, 0, top + 1);
  lua_sethook(L_, nullptr, 0, 0);
  a.armed = false;
  Outcome out;
  const std::string cap_text = "memory cap of " + std::to_string(a.cap / 1024) + " KiB exceeded";
  if (status != LUA_OK) {
    const char* m = lua_tostring(L_, -1);
    out.message = m != nullptr ? m : "(error object is not a string)";
    if (status == LUA_ERRMEM) {
      out.failure = Failure::Memory;
      out.message = cap_text + " (not enough memory)";
    } else if (a.exhausted) {
      out.failure = Failure::Budget;
    } else if (a.over) {
      out.failure = Failure::Memory;
    } else {
      out.failure = Failure::Error;
    }
  } else if (a.over) {
    out.failure = Failure::Memory;
    out.message = cap_text;
  }
  lua_settop(L_, top);
  if (out.failure != Failure::None) {
    lua_gc(L_, LUA_GCCOLLECT, 0);
    a.over = a.used > a.cap;
  }
  return out;
}

}  // namespace sluice::rules
