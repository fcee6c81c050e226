#include "proxy/stand_in_table.hpp"

#include <mutex>

namespace sluice::proxy {

StandInTable& StandInTable::process() {
  static StandInTable table;
  return table;
}

StandInTable::Issued StandInTable::issue(
    const std::string& sandbox, const std::vector<std::shared_ptr<const rules::GatewayCredential>>& credentials) {
  Issued issued;
  for (const auto& c : credentials) issued.emplace_back(c->name, rules::make_stand_in(c->secret));
  std::unique_lock lock(mu_);
  forget_locked(sandbox);
  if (!issued.empty()) {
    for (const auto& [credential, value] : issued) index_.add({sandbox, credential, value});
    by_sandbox_[sandbox] = issued;
  }
  any_.store(!index_.empty(), std::memory_order_release);
  return issued;
}

void StandInTable::forget(const std::string& sandbox) {
  std::unique_lock lock(mu_);
  forget_locked(sandbox);
  any_.store(!index_.empty(), std::memory_order_release);
}

void StandInTable::forget_locked(const std::string& sandbox) {
  auto it = by_sandbox_.find(sandbox);
  if (it == by_sandbox_.end()) return;
  for (const auto& [credential, value] : it->second) index_.remove(sandbox, value);
  by_sandbox_.erase(it);
}

StandInTable::View StandInTable::view() const {
  if (!any()) return {};
  std::shared_lock lock(mu_);
  if (index_.empty()) return {};
  return View(std::move(lock), &index_);
}

}  // namespace sluice::proxy
