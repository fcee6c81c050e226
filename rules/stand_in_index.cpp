#include "rules/stand_in_index.hpp"

#include <algorithm>

#include "rules/gateway_credential.hpp"

namespace sluice::rules {

namespace {
bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
}  // namespace

void StandInIndex::add(IssuedStandIn s) {
  if (s.value.empty()) return;
  const size_t i = all_.size();
  all_.push_back(std::move(s));
  const std::string& v = all_[i].value;
  // Keyed by the tail when it is letters and digits (make_stand_in's random part), else searched
  // one by one.
  const bool alnum_tail = v.size() >= kKey && std::all_of(v.end() - kKey, v.end(), [](char c) { return is_alnum(c); });
  if (alnum_tail)
    by_tail_[v.substr(v.size() - kKey)].push_back(i);
  else
    short_.push_back(i);
}

const IssuedStandIn* StandInIndex::find(std::string_view text, std::string_view except) const {
  for (size_t i : short_)
    if (all_[i].sandbox != except && text.find(all_[i].value) != std::string_view::npos) return &all_[i];
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
    for (size_t i : it->second) {
      const std::string& v = all_[i].value;
      if (all_[i].sandbox != except && v.size() <= end && text.substr(end - v.size(), v.size()) == v) return &all_[i];
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
