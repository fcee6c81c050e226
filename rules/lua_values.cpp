// What a hook receives: the connection table `c`, the request object `r` (with
// set_header / remove_header), the address list and the close statistics.
#include <strings.h>

#include <cctype>
#include <cstring>

#include "rules/lua_detail.hpp"

namespace sluice::rules::lua_detail {

const char kRequestKey = 0;

namespace {

void set_string(lua_State* L, const char* key, std::string_view v) {
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, key);
}

void set_integer(lua_State* L, const char* key, int64_t v) {
  lua_pushinteger(L, static_cast<lua_Integer>(v));
  lua_setfield(L, -2, key);
}

// `c`: made at the connection's first hook call and kept in the registry, so
// c.state lives as long as the connection; host and port follow the target.
void push_connection(lua_State* L, LuaPolicy::CallContext* ctx) {
  LuaConnection* c = ctx->conn;
  if (c->ref == LUA_NOREF) {
    const ConnectionFacts& f = *c->facts;
    lua_createtable(L, 0, f.peer_known ? 16 : 8);  // kind listener client id state host port [peer]
    set_string(L, "kind", f.kind);
    set_string(L, "listener", f.listener);
    set_string(L, "client", f.client);
    set_integer(L, "id", static_cast<int64_t>(f.id));
    if (f.peer_known) {
      lua_createtable(L, 0, 3);
      set_integer(L, "pid", f.pid);
      set_integer(L, "uid", f.uid);
      set_integer(L, "gid", f.gid);
      lua_setfield(L, -2, "peer");
    }
    lua_newtable(L);
    lua_setfield(L, -2, "state");
    lua_pushvalue(L, -1);
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
  }
  set_string(L, "host", c->host);
  set_integer(L, "port", c->port);
  if (c->scheme.empty()) {
    lua_pushnil(L);
    lua_setfield(L, -2, "scheme");
  } else {
    set_string(L, "scheme", c->scheme);
  }
}

// Pushes `name` in lower case.
void push_lower(lua_State* L, std::string_view name) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (char ch : name) luaL_addchar(&b, static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  luaL_pushresult(&b);
}

void push_request(lua_State* L, LuaPolicy::CallContext* ctx) {
  const RequestFacts& r = *ctx->request;
  lua_createtable(L, 0, 5);
  set_string(L, "method", r.method);
  set_string(L, "url", r.url);
  set_string(L, "path", r.path);
  lua_createtable(L, 0, r.headers ? static_cast<int>(r.headers->size()) : 0);
  if (r.headers != nullptr) {
    for (const auto& [name, value] : *r.headers) {
      push_lower(L, name);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {  // a repeated field: values joined as HTTP allows
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, value.data(), value.size());
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, value.data(), value.size());
      }
      lua_rawset(L, -3);
    }
  }
  lua_setfield(L, -2, "headers");
  lua_pushlightuserdata(L, const_cast<char*>(&kRequestKey));
  lua_pushinteger(L, static_cast<lua_Integer>(ctx->request_seq));
  lua_rawset(L, -3);
  luaL_setmetatable(L, kRequestMeta);
}

void push_addrs(lua_State* L, const std::vector<IpAddr>& addrs) {
  lua_createtable(L, static_cast<int>(addrs.size()), 0);
  char buf[64];
  for (size_t i = 0; i < addrs.size(); ++i) {
    // to_string allocates; copy into a stack buffer before any Lua call can raise.
    size_t n = 0;
    try {
      std::string s = addrs[i].to_string();
      n = std::min(s.size(), sizeof buf);
      std::memcpy(buf, s.data(), n);
    } catch (...) {
      n = 0;
    }
    lua_pushlstring(L, buf, n);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
}

void push_stats(lua_State* L, const CloseStats& s) {
  lua_createtable(L, 0, 5);
  set_integer(L, "bytes_up", static_cast<int64_t>(s.bytes_up));
  set_integer(L, "bytes_down", static_cast<int64_t>(s.bytes_down));
  set_integer(L, "duration_ms", static_cast<int64_t>(s.duration_ms));
  set_integer(L, "requests", static_cast<int64_t>(s.requests));
  set_string(L, "verdict", s.verdict);
}

// ---- r:set_header / r:remove_header ---------------------------------------

bool is_tchar(unsigned char c) { return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr; }

// Fields sluice itself writes or strips: a script changing them could split or
// smuggle requests (framing) or misroute them (Host).
bool managed_by_sluice(const char* name, size_t n) {
  static const char* const kManaged[] = {
      "host", "content-length", "transfer-encoding", "connection",     "keep-alive",
      "te",   "trailer",        "upgrade",           "http2-settings", "proxy-connection"};
  for (const char* m : kManaged)
    if (std::strlen(m) == n && strncasecmp(m, name, n) == 0) return true;
  return n >= 6 && strncasecmp(name, "proxy-", 6) == 0;
}

// Checks that argument 1 is the r of the on_request call in progress and the
// name is one a script may edit; returns the call's context.
LuaPolicy::CallContext* edit_target(lua_State* L, const char* what, const char* name, size_t n) {
  luaL_checktype(L, 1, LUA_TTABLE);
  LuaPolicy::CallContext* ctx = policy_of(L)->active_call();
  lua_pushlightuserdata(L, const_cast<char*>(&kRequestKey));
  lua_rawget(L, 1);
  bool current = ctx != nullptr && ctx->hook == Hook::Request && ctx->edits != nullptr &&
                 lua_tointeger(L, -1) == static_cast<lua_Integer>(ctx->request_seq);
  lua_pop(L, 1);
  if (!current) luaL_error(L, "r:%s: r belongs to an on_request call that has ended", what);
  bool token = n > 0;
  for (size_t i = 0; i < n; ++i) token = token && is_tchar(static_cast<unsigned char>(name[i]));
  if (!token) luaL_error(L, "r:%s: '%s' is not a valid header name", what, name);
  if (managed_by_sluice(name, n)) luaL_error(L, "r:%s: %s is managed by sluice and cannot be changed", what, name);
  return ctx;
}

// Keeps r.headers in step with the edits, so later scripts see them.
void update_headers_view(lua_State* L, const char* name, size_t n, int value_index) {
  if (lua_getfield(L, 1, "headers") != LUA_TTABLE) return lua_pop(L, 1);
  push_lower(L, std::string_view(name, n));
  if (value_index != 0)
    lua_pushvalue(L, value_index);
  else
    lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

int l_set_header(lua_State* L) {
  size_t n = 0, vn = 0;
  const char* name = luaL_checklstring(L, 2, &n);
  const char* value = luaL_checklstring(L, 3, &vn);
  LuaPolicy::CallContext* ctx = edit_target(L, "set_header", name, n);
  for (size_t i = 0; i < vn; ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      luaL_error(L, "r:set_header: the value for %s holds a control character (CR, LF, NUL, ...)", name);
  }
  bool oom = false;
  try {
    ctx->edits->push_back(HeaderEdit{std::string(name, n), std::string(value, vn), false});
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "out of memory");
  update_headers_view(L, name, n, 3);
  return 0;
}

int l_remove_header(lua_State* L) {
  size_t n = 0;
  const char* name = luaL_checklstring(L, 2, &n);
  LuaPolicy::CallContext* ctx = edit_target(L, "remove_header", name, n);
  bool oom = false;
  try {
    ctx->edits->push_back(HeaderEdit{std::string(name, n), {}, true});
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "out of memory");
  update_headers_view(L, name, n, 0);
  return 0;
}

}  // namespace

void open_request_meta(lua_State* L) {
  luaL_newmetatable(L, kRequestMeta);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, l_set_header);
  lua_setfield(L, -2, "set_header");
  lua_pushcfunction(L, l_remove_header);
  lua_setfield(L, -2, "remove_header");
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "sluice request");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

int push_hook_arguments(lua_State* L, LuaPolicy::CallContext* ctx) {
  push_connection(L, ctx);
  switch (ctx->hook) {
    case Hook::Connect: return 1;
    case Hook::Request: push_request(L, ctx); return 2;
    case Hook::Resolved: push_addrs(L, *ctx->addrs); return 2;
    case Hook::Close: push_stats(L, *ctx->stats); return 2;
  }
  return 1;
}

}  // namespace sluice::rules::lua_detail
