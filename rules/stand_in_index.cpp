#include "rules/stand_in_index.hpp"

#include <algorithm>

#include "rules/credentials.hpp"
#include "rules/gateway_credential.hpp"

namespace sluice::rules {

namespace {
bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool keyed(const std::string& v) {
  return v.size() >= StandInIndex::kKey &&
         std::all_of(v.end() - StandInIndex::kKey, v.end(), [](char c) { return is_alnum(c); });
}
}  // namespace

void StandInIndex::add(IssuedStandIn s) {
  if (s.value.empty()) return;
  ++size_;
  // Keyed by the tail when it is letters and digits (make_stand_in's random part), else searched
  // one by one.
  if (keyed(s.value))
    by_tail_[s.value.substr(s.value.size() - kKey)].push_back(std::move(s));
  else
    others_.push_back(std::move(s));
}

bool StandInIndex::remove(const std::string& sandbox, const std::string& value) {
  auto drop = [&](std::vector<IssuedStandIn>& list) {
    auto it = std::find_if(list.begin(), list.end(),
                           [&](const IssuedStandIn& e) { return e.sandbox == sandbox && e.value == value; });
    if (it == list.end()) return false;
    list.erase(it);
    --size_;
    return true;
  };
  if (!keyed(value)) return drop(others_);
  auto bucket = by_tail_.find(value.substr(value.size() - kKey));
  if (bucket == by_tail_.end() || !drop(bucket->second)) return false;
  if (bucket->second.empty()) by_tail_.erase(bucket);
  return true;
}

const IssuedStandIn* StandInIndex::find(std::string_view text, std::string_view except) const {
  for (const auto& e : others_)
    if (e.sandbox != except && text.find(e.value) != std::string_view::npos) return &e;
  if (by_tail_.empty() || text.size() < kKey) return nullptr;
  std::string key(kKey, '\0');
  // Probe each window that could end a stand-in: its tail must be a key (kKey letters and
  // digits, so windows over anything else are skipped without hashing), and the bytes before
  // it the rest of that stand-in.
  size_t run = 0;  // letters and digits ending at `end`
  for (size_t end = 1; end <= text.size(); ++end) {
    run = is_alnum(text[end - 1]) ? run + 1 : 0;
    if (run < kKey) continue;
    key.assign(text.data() + end - kKey, kKey);
    auto it = by_tail_.find(key);
    if (it == by_tail_.end()) continue;
    for (const auto& e : it->second) {
      const std::string& v = e.value;
      if (e.sandbox != except && v.size() <= end && text.substr(end - v.size(), v.size()) == v) return &e;
    }
  }
  return nullptr;
}

const IssuedStandIn* StandInIndex::find_header(std::string_view value, std::string_view except) const {
  if (const IssuedStandIn* s = find(value, except)) return s;
  if (auto decoded = basic_payload(value)) return find(*decoded, except);
  return nullptr;
}

const IssuedStandIn* StandInIndex::find_bytes(std::string_view bytes, std::string_view except) const {
  if (const IssuedStandIn* s = find(bytes, except)) return s;
  for (const auto& decoded : basic_payloads_in(bytes))
    if (const IssuedStandIn* s = find(decoded, except)) return s;
  return nullptr;
}

}  // namespace sluice::rules
