// Private to the Lua engine (lua_policy.cpp, lua_values.cpp, lua_module.cpp).
// Everything here runs inside LuaSandbox::call: Lua errors unwind with
// longjmp, so no C++ object with a destructor may be alive across a Lua API
// call that can raise, and no C++ exception may leave a function.
#pragma once
#include <lua.hpp>

#include <string>
#include <vector>

#include "rules/lua_policy.hpp"

namespace sluice::rules {

struct LuaPolicy::CallContext {
  LuaPolicy* policy = nullptr;
  const Script* script = nullptr;
  Hook hook = Hook::Connect;
  LuaConnection* conn = nullptr;
  const RequestFacts* request = nullptr;
  std::vector<HeaderEdit>* edits = nullptr;
  uint64_t request_seq = 0;
  const std::vector<IpAddr>* addrs = nullptr;
  const CloseStats* stats = nullptr;
  // the answer, filled by the call
  HookResult::Kind kind = HookResult::Kind::None;
  std::string reason;
};

namespace lua_detail {

// The LuaPolicy a state belongs to (kept in the state's extra space).
inline LuaPolicy* policy_of(lua_State* L) { return *static_cast<LuaPolicy**>(lua_getextraspace(L)); }

// Registry names of metatables made at load.
inline constexpr const char* kRequestMeta = "sluice.request";
inline constexpr const char* kCounterMeta = "sluice.counter";
// Light-userdata key under which r keeps the number of its on_request call.
extern const char kRequestKey;

// Builds the read-only `sluice` global and the counter metatable (lua_module.cpp).
void open_sluice_module(lua_State* L);
// The metatable of r, with set_header and remove_header (lua_values.cpp).
void open_request_meta(lua_State* L);
// Pushes the hook's arguments after the function; returns how many.
int push_hook_arguments(lua_State* L, LuaPolicy::CallContext* ctx);

}  // namespace lua_detail
}  // namespace sluice::rules
