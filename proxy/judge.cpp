#include "proxy/judge.hpp"

namespace sluice::proxy {

rules::Verdict judge(const JudgeRequest& r) {
  if (r.policy == nullptr) return rules::Verdict{rules::Action::Deny, "no-policy", "default", ""};
  return r.policy->judge(r.host, r.port);
}

}  // namespace sluice::proxy
