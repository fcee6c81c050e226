#include "proxy/stand_in_table.hpp"

namespace sluice::proxy {

StandInTable& StandInTable::process() {
  static StandInTable table;
  return table;
}

StandInTable::Issued StandInTable::issue(
    const std::string& sandbox, const std::vector<std::shared_ptr<const rules::GatewayCredential>>& credentials) {
  Issued issued;
  for (const auto& c : credentials) issued.emplace_back(c->name, rules::make_stand_in(c->secret));
  std::lock_guard lock(mu_);
  if (issued.empty())
    by_sandbox_.erase(sandbox);
  else
    by_sandbox_[sandbox] = issued;
  rebuild_locked();
  return issued;
}

void StandInTable::forget(const std::string& sandbox) {
  std::lock_guard lock(mu_);
  if (by_sandbox_.erase(sandbox) == 0) return;
  rebuild_locked();
}

std::shared_ptr<const rules::StandInIndex> StandInTable::current() const {
  if (!any_.load(std::memory_order_acquire)) return nullptr;
  std::lock_guard lock(mu_);
  return index_;
}

// A new index per change: sessions keep searching the one they took.
void StandInTable::rebuild_locked() {
  any_.store(!by_sandbox_.empty(), std::memory_order_release);
  if (by_sandbox_.empty()) {
    index_.reset();
    return;
  }
  auto next = std::make_shared<rules::StandInIndex>();
  for (const auto& [sandbox, issued] : by_sandbox_)
    for (const auto& [credential, value] : issued) next->add({sandbox, credential, value});
  index_ = std::move(next);
}

}  // namespace sluice::proxy
