// Loading a policy's scripts and calling their hooks.
#include "rules/lua_policy.hpp"

#include <strings.h>

#include <cstring>

#include "rules/lua_detail.hpp"
#include "rules/pattern.hpp"

namespace sluice::rules {

using lua_detail::policy_of;

const char* hook_name(Hook h) {
  switch (h) {
    case Hook::Connect: return "on_connect";
    case Hook::Request: return "on_request";
    case Hook::Resolved: return "on_resolved";
    case Hook::Close: return "on_close";
  }
  return "?";
}

void apply_header_edits(HeaderFields& headers, const std::vector<HeaderEdit>& edits) {
  for (const HeaderEdit& e : edits) {
    std::erase_if(headers, [&](const auto& h) {
      return h.first.size() == e.name.size() && strncasecmp(h.first.data(), e.name.data(), e.name.size()) == 0;
    });
    if (!e.remove) headers.emplace_back(e.name, e.value);
  }
}

namespace {

struct LoadContext {
  LuaPolicy* policy;
  const ScriptSource* source;
  LuaPolicy::Script* script;
  bool first;
};

// Runs one script's top level in its own globals table and takes its hooks.
int load_script(lua_State* L) {
  auto* ctx = static_cast<LoadContext*>(lua_touserdata(L, 1));
  if (ctx->first) {
    *static_cast<LuaPolicy**>(lua_getextraspace(L)) = ctx->policy;
    lua_detail::open_sluice_module(L);
  }
  const std::string& text = ctx->source->text;
  lua_pushfstring(L, "@%s", ctx->source->name.c_str());
  const char* chunkname = lua_tostring(L, -1);
  if (luaL_loadbufferx(L, text.data(), text.size(), chunkname, "t") != LUA_OK) return lua_error(L);
  // The script's globals: its own table, reading through to the shared libraries.
  lua_createtable(L, 0, 8);
  lua_createtable(L, 0, 1);
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  ctx->script->env = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setupvalue(L, -2, 1);  // the chunk's _ENV
  lua_call(L, 0, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->script->env);
  for (size_t h = 0; h < kHookCount; ++h) {
    const char* name = hook_name(static_cast<Hook>(h));
    lua_pushstring(L, name);
    int t = lua_rawget(L, -2);
    if (t == LUA_TFUNCTION) {
      ctx->script->hooks[h] = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
      if (t != LUA_TNIL)
        return luaL_error(L, "%s: %s must be a function, not a %s", ctx->source->name.c_str(), name,
                          lua_typename(L, t));
      lua_pop(L, 1);
    }
  }
  return 0;
}

// "name:12: message" -> 12 and "message", when the prefix is the script's name.
void split_position(const std::string& text, const std::string& name, LuaPolicy::LoadError* out) {
  out->message = text;
  out->line = 0;
  if (text.compare(0, name.size(), name) != 0 || text.size() <= name.size() || text[name.size()] != ':') return;
  size_t p = name.size() + 1, digits = p;
  while (p < text.size() && text[p] >= '0' && text[p] <= '9') ++p;
  if (p == digits || p >= text.size() || text[p] != ':') return;
  out->line = std::atoi(text.c_str() + digits);
  size_t rest = p + 1;
  while (rest < text.size() && text[rest] == ' ') ++rest;
  out->message = text.substr(rest);
}

HookResult::Kind parse_verdict_word(const char* s, size_t n) {
  auto is = [&](const char* w) { return n == std::strlen(w) && std::memcmp(s, w, n) == 0; };
  if (is("allow")) return HookResult::Kind::Allow;
  if (is("deny")) return HookResult::Kind::Deny;
  if (is("ask")) return HookResult::Kind::Ask;
  return HookResult::Kind::Error;
}

// Client-facing text from a script: one line, bounded.
constexpr size_t kMaxReason = 300;

// The hook's return value at the top of the stack -> ctx->kind / ctx->reason.
// The hook function itself is at `fn`, for the line of an error message.
void read_verdict(lua_State* L, LuaPolicy::CallContext* ctx, int fn) {
  int t = lua_type(L, -1);
  if (t == LUA_TNIL) return;
  if (t == LUA_TSTRING) {  // the common answer: a word, checked without touching the debug API
    size_t n = 0;
    const char* w = lua_tolstring(L, -1, &n);
    HookResult::Kind k = parse_verdict_word(w, n);
    if (k != HookResult::Kind::Error) {
      ctx->kind = k;
      return;
    }
  }
  lua_Debug ar;
  lua_pushvalue(L, fn);
  lua_getinfo(L, ">S", &ar);
  const int line = ar.linedefined;
  const char* hook = hook_name(ctx->hook);
  const char* script = ctx->script->name.c_str();
  const char* word = nullptr;
  size_t word_len = 0;
  const char* reason = nullptr;
  size_t reason_len = 0;
  if (t == LUA_TSTRING) {
    word = lua_tolstring(L, -1, &word_len);
  } else if (t == LUA_TTABLE) {
    if (lua_getfield(L, -1, "verdict") != LUA_TSTRING)
      luaL_error(L,
                 "%s:%d: %s returned a table without a verdict string (expected {verdict = \"deny\", reason = "
                 "\"...\"})",
                 script, line, hook);
    word = lua_tolstring(L, -1, &word_len);
    int rt = lua_getfield(L, -2, "reason");
    if (rt == LUA_TSTRING || rt == LUA_TNUMBER)
      reason = lua_tolstring(L, -1, &reason_len);
    else if (rt != LUA_TNIL)
      luaL_error(L, "%s:%d: %s returned a reason that is a %s, not a string", script, line, hook, lua_typename(L, rt));
  } else {
    luaL_error(L, "%s:%d: %s returned a %s: expected \"allow\", \"deny\", \"ask\", nil or a table", script, line, hook,
               lua_typename(L, t));
  }
  HookResult::Kind kind = parse_verdict_word(word, word_len);
  if (kind == HookResult::Kind::Error)
    luaL_error(L, "%s:%d: %s returned verdict \"%s\": expected \"allow\", \"deny\" or \"ask\"", script, line, hook,
               word);
  bool oom = false;
  try {
    ctx->reason.clear();
    for (size_t i = 0; i < reason_len && ctx->reason.size() < kMaxReason; ++i) {
      unsigned char ch = static_cast<unsigned char>(reason[i]);
      ctx->reason += (ch < 0x20 || ch == 0x7f) ? ' ' : static_cast<char>(ch);
    }
  } catch (...) {
    oom = true;
  }
  if (oom) luaL_error(L, "out of memory");
  ctx->kind = kind;
}

int call_hook(lua_State* L) {
  auto* ctx = static_cast<LuaPolicy::CallContext*>(lua_touserdata(L, 1));
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->script->hooks[static_cast<size_t>(ctx->hook)]);
  const int fn = lua_gettop(L);
  lua_pushvalue(L, fn);  // the copy is called; the original stays for read_verdict
  int nargs = lua_detail::push_hook_arguments(L, ctx);
  lua_call(L, nargs, 1);
  if (ctx->hook != Hook::Close) read_verdict(L, ctx, fn);
  return 0;
}

}  // namespace

std::shared_ptr<LuaPolicy> LuaPolicy::load(const std::vector<ScriptSource>& scripts, const LuaLimits& limits,
                                           LuaEnv env, LoadError* error) {
  std::shared_ptr<LuaPolicy> p(new LuaPolicy);
  std::string why;
  p->sandbox_ = LuaSandbox::create(limits, &why);
  if (!p->sandbox_) {
    if (error) *error = LoadError{0, 0, why};
    return nullptr;
  }
  if (!env.counters) env.counters = std::make_shared<CounterStore>(env.clock ? env.clock : system_clock());
  if (!env.clock) env.clock = system_clock();
  p->env_ = std::move(env);
  p->scripts_.resize(scripts.size());
  for (size_t i = 0; i < scripts.size(); ++i) {
    p->scripts_[i].name = scripts[i].name;
    LoadContext ctx{p.get(), &scripts[i], &p->scripts_[i], i == 0};
    auto out = p->sandbox_->call(load_script, &ctx);
    if (out.failure != LuaSandbox::Failure::None) {
      if (error) {
        error->script = i;
        split_position(out.message, scripts[i].name, error);
      }
      return nullptr;
    }
    for (size_t h = 0; h < kHookCount; ++h)
      if (p->scripts_[i].hooks[h] != LUA_NOREF) p->present_[h] = true;
  }
  return p;
}

LuaPolicy::~LuaPolicy() = default;

HookResult LuaPolicy::run(Hook h, CallContext& proto) {
  proto.policy = this;
  proto.hook = h;
  for (const Script& s : scripts_) {
    if (s.hooks[static_cast<size_t>(h)] == LUA_NOREF) continue;
    CallContext ctx = proto;
    ctx.script = &s;
    active_ = &ctx;
    auto out = sandbox_->call(call_hook, &ctx);
    active_ = nullptr;
    if (out.failure != LuaSandbox::Failure::None) return HookResult{HookResult::Kind::Error, s.name, "", out.message};
    if (ctx.kind != HookResult::Kind::None) return HookResult{ctx.kind, s.name, std::move(ctx.reason), ""};
  }
  return {};
}

HookResult LuaPolicy::on_connect(LuaConnection& c) {
  CallContext ctx;
  ctx.conn = &c;
  return run(Hook::Connect, ctx);
}

HookResult LuaPolicy::on_request(LuaConnection& c, const RequestFacts& r, std::vector<HeaderEdit>* edits) {
  CallContext ctx;
  ctx.conn = &c;
  ctx.request = &r;
  ctx.edits = edits;
  ctx.request_seq = ++request_seq_;
  return run(Hook::Request, ctx);
}

HookResult LuaPolicy::on_resolved(LuaConnection& c, const std::vector<IpAddr>& addrs) {
  CallContext ctx;
  ctx.conn = &c;
  ctx.addrs = &addrs;
  return run(Hook::Resolved, ctx);
}

std::vector<std::string> LuaPolicy::on_close(LuaConnection& c, const CloseStats& stats) {
  std::vector<std::string> errors;
  CallContext proto;
  proto.policy = this;
  proto.hook = Hook::Close;
  proto.conn = &c;
  proto.stats = &stats;
  for (const Script& s : scripts_) {
    if (s.hooks[static_cast<size_t>(Hook::Close)] == LUA_NOREF) continue;
    CallContext ctx = proto;
    ctx.script = &s;
    active_ = &ctx;
    auto out = sandbox_->call(call_hook, &ctx);
    active_ = nullptr;
    if (out.failure != LuaSandbox::Failure::None) errors.push_back(out.message);
  }
  return errors;
}

void LuaPolicy::release(LuaConnection& c) {
  if (c.ref == LUA_NOREF || c.ref == LUA_REFNIL) return;
  // Unprotected on purpose: luaL_unref only overwrites two existing registry
  // slots (the ref's and the free list's), which allocates nothing and cannot raise.
  luaL_unref(sandbox_->state(), LUA_REGISTRYINDEX, c.ref);
  c.ref = LUA_NOREF;
}

int LuaPolicy::match(std::string_view host, std::string_view pattern, uint16_t port, std::string* error) {
  auto it = patterns_.find(std::string(pattern));
  if (it == patterns_.end()) {
    auto parsed = parse_pattern(pattern);
    if (!parsed) {
      *error = parsed.error();
      return -1;
    }
    if (patterns_.size() >= 256) patterns_.clear();
    auto set = std::make_unique<HostSet>();
    set->add(std::move(parsed.value()));
    it = patterns_.emplace(std::string(pattern), std::move(set)).first;
  }
  auto h = canonicalize_host(host);
  if (!h) return 0;  // not a host at all: matches nothing
  return it->second->match(h.value(), port) != nullptr ? 1 : 0;
}

}  // namespace sluice::rules
