// The `sluice` module scripts see: log, now, match, in_cidr and counters.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>

#include "rules/lua_detail.hpp"

namespace sluice::rules::lua_detail {

namespace {

constexpr size_t kMaxLogMessage = 1000;
constexpr size_t kMaxCounterKey = 1024;

// sluice.log(level, message)
int l_log(lua_State* L) {
  static const char* const kLevels[] = {"debug", "info", "warn", "error", nullptr};
  int level = luaL_checkoption(L, 1, nullptr, kLevels);
  size_t n = 0;
  const char* msg = luaL_checklstring(L, 2, &n);
  LuaPolicy* self = policy_of(L);
  if (!self->env().log) return 0;
  LuaPolicy::CallContext* ctx = self->active_call();
  bool oom = false;
  try {
    LuaLogRecord r;
    r.conn = ctx && ctx->conn && ctx->conn->facts ? ctx->conn->facts->id : 0;
    r.script = ctx && ctx->script ? ctx->script->name : "";
    r.level = kLevels[level];
    r.message.assign(msg, std::min(n, kMaxLogMessage));
    self->env().log(r);
  } catch (const std::bad_alloc&) {
    oom = true;
  } catch (...) {
    // A sink that fails loses the line; the script goes on.
  }
  if (oom) return luaL_error(L, "out of memory");
  return 0;
}

// sluice.now(): seconds since the epoch, with milliseconds.
int l_now(lua_State* L) {
  lua_pushnumber(L, policy_of(L)->env().clock->wall_seconds());
  return 1;
}

// sluice.match(host, pattern [, port]): the allow/deny list matcher on one pattern.
int l_match(lua_State* L) {
  size_t hn = 0, pn = 0;
  const char* host = luaL_checklstring(L, 1, &hn);
  const char* pattern = luaL_checklstring(L, 2, &pn);
  lua_Integer port = luaL_optinteger(L, 3, 0);
  if (port < 0 || port > 65535) return luaL_argerror(L, 3, "port must be 0..65535");
  char why[256] = "";
  int r = -1;
  try {
    std::string error;
    r = policy_of(L)->match(std::string_view(host, hn), std::string_view(pattern, pn), static_cast<uint16_t>(port),
                            &error);
    if (r < 0) std::snprintf(why, sizeof why, "%s", error.c_str());
  } catch (...) {
    std::snprintf(why, sizeof why, "out of memory");
  }
  if (r < 0) return luaL_error(L, "sluice.match: %s", why);
  lua_pushboolean(L, r);
  return 1;
}

// "IP", "[v6]", "IP:PORT" or "[v6]:PORT" -> the address, or nothing.
std::optional<IpAddr> address_of(std::string_view s) {
  auto a = split_authority(s, true);
  if (!a) return std::nullopt;
  auto ip = IpAddr::parse(a->host);
  if (!ip || (a->bracketed && !ip->v6)) return std::nullopt;
  return ip;
}

// sluice.in_cidr(addr, cidr): false for anything that is not an address (e.g. c.client "unix").
int l_in_cidr(lua_State* L) {
  size_t an = 0, cn = 0;
  const char* addr = luaL_checklstring(L, 1, &an);
  const char* cidr = luaL_checklstring(L, 2, &cn);
  auto block = Cidr::parse(std::string_view(cidr, cn));
  if (!block) return luaL_error(L, "sluice.in_cidr: '%s' is not a CIDR block like 10.0.0.0/8", cidr);
  auto a = address_of(std::string_view(addr, an));
  bool in = false;
  if (a) {
    in = block->contains(*a);
    // ::ffff:a.b.c.d reaches a.b.c.d: IPv4 blocks apply to it, as in the lists.
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!in && a->v6 && !block->base.v6 && std::memcmp(a->bytes.data(), kMapped, 12) == 0) {
      IpAddr v4;
      std::memcpy(v4.bytes.data(), a->bytes.data() + 12, 4);
      in = block->contains(v4);
    }
  }
  lua_pushboolean(L, in);
  return 1;
}

// ---- counters ----------------------------------------------------------------

struct CounterHandle {
  std::shared_ptr<Counter> counter;
  CounterStore* store;
};

CounterHandle* check_counter(lua_State* L) { return static_cast<CounterHandle*>(luaL_checkudata(L, 1, kCounterMeta)); }

void push_value(lua_State* L, double v) {
  if (std::floor(v) == v && std::fabs(v) < 9007199254740992.0)
    lua_pushinteger(L, static_cast<lua_Integer>(v));
  else
    lua_pushnumber(L, v);
}

// sluice.counter(key [, window_seconds])
int l_counter(lua_State* L) {
  size_t n = 0;
  const char* key = luaL_checklstring(L, 1, &n);
  if (n > kMaxCounterKey) return luaL_argerror(L, 1, "key longer than 1024 bytes");
  lua_Number window = luaL_optnumber(L, 2, 0);
  if (!(window >= 0) || window > 366.0 * 86400) return luaL_argerror(L, 2, "window must be 0..31622400 seconds");
  int64_t window_ms = static_cast<int64_t>(std::ceil(window * 1000));
  if (window > 0 && window_ms == 0) window_ms = 1;
  CounterStore* store = policy_of(L)->env().counters.get();
  void* mem = lua_newuserdatauv(L, sizeof(CounterHandle), 0);
  bool full = false, oom = false;
  try {
    auto c = store->get(std::string_view(key, n), window_ms);
    if (c)
      new (mem) CounterHandle{std::move(c), store};
    else
      full = true;
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "out of memory");
  if (full)
    return luaL_error(L, "sluice.counter: this policy already holds %d live counters",
                      static_cast<int>(CounterStore::kDefaultMaxCounters));
  luaL_setmetatable(L, kCounterMeta);
  return 1;
}

// counter:add(n) -> the new value
int l_counter_add(lua_State* L) {
  CounterHandle* h = check_counter(L);
  lua_Number n = luaL_checknumber(L, 2);
  if (!std::isfinite(n)) return luaL_argerror(L, 2, "must be a finite number");
  int64_t now = h->store->now_ms();
  h->counter->add(n, now);
  push_value(L, h->counter->get(now));
  return 1;
}

// counter:get()
int l_counter_get(lua_State* L) {
  CounterHandle* h = check_counter(L);
  push_value(L, h->counter->get(h->store->now_ms()));
  return 1;
}

int l_counter_gc(lua_State* L) {
  auto* h = static_cast<CounterHandle*>(luaL_testudata(L, 1, kCounterMeta));
  if (h != nullptr && h->store != nullptr) {
    h->~CounterHandle();
    h->store = nullptr;
  }
  return 0;
}

int l_read_only(lua_State* L) { return luaL_error(L, "the sluice module is read-only"); }

}  // namespace

void open_sluice_module(lua_State* L) {
  luaL_newmetatable(L, kCounterMeta);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, l_counter_add);
  lua_setfield(L, -2, "add");
  lua_pushcfunction(L, l_counter_get);
  lua_setfield(L, -2, "get");
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_counter_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "sluice counter");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  open_request_meta(L);

  static const luaL_Reg kFunctions[] = {{"log", l_log},         {"now", l_now},         {"match", l_match},
                                        {"in_cidr", l_in_cidr}, {"counter", l_counter}, {nullptr, nullptr}};
  lua_newtable(L);  // what scripts see: an empty table reading through to the module
  luaL_newlib(L, kFunctions);
  lua_createtable(L, 0, 3);
  lua_insert(L, -2);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_read_only);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "sluice module");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_setglobal(L, "sluice");
}

}  // namespace sluice::rules::lua_detail
