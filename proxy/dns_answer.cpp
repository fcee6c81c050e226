#include "proxy/dns_answer.hpp"

#include <algorithm>

#include "proxy/decision_log.hpp"
#include "proxy/json.hpp"
#include "rules/dns_verdict.hpp"
#include "rules/host.hpp"

namespace sluice::proxy {

namespace {

JsonLine event(std::string_view name, std::string_view sandbox) {
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", name);
  if (!sandbox.empty()) j.str("sandbox", sandbox);
  return j;
}

}  // namespace

DnsAnswerer::DnsAnswerer(const rules::TransparentConfig& cfg, std::string sandbox, DnsFloodLimit flood)
    : map_(cfg), ttl_s_(cfg.dns_ttl_s), sandbox_(std::move(sandbox)), flood_(flood), tokens_(flood.burst) {}

bool DnsAnswerer::take_token(int64_t now_ms) {
  if (!clock_started_) {
    clock_started_ = true;
    refilled_ms_ = now_ms;
  }
  if (now_ms > refilled_ms_) {
    tokens_ = std::min(flood_.burst, tokens_ + static_cast<double>(now_ms - refilled_ms_) * flood_.per_second / 1000.0);
    refilled_ms_ = now_ms;
  }
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void DnsAnswerer::note(Window& w, int64_t now_ms, Outcome& out, std::string line) {
  if (w.open && now_ms - w.start < flood_.log_window_ms) {
    ++w.unlogged;
    return;
  }
  // `line` is an unfinished JSON object; the count closes it.
  line += ",\"unlogged_since_last\":" + std::to_string(w.unlogged) + "}";
  out.log.push_back(std::move(line));
  w.open = true;
  w.start = now_ms;
  w.unlogged = 0;
}

DnsAnswerer::Outcome DnsAnswerer::answer(const rules::Policy& policy, std::string_view msg, int64_t now_ms) {
  return answer([&](const rules::CanonicalHost& host) { return rules::dns_verdict(policy, host); }, policy.name, msg,
                now_ms);
}

DnsAnswerer::Outcome DnsAnswerer::answer(const VerdictFn& verdict, std::string_view policy_name, std::string_view msg,
                                         int64_t now_ms) {
  Outcome out;
  auto parsed = dns::parse_query(msg);
  const bool address_query = parsed.ok && (parsed.query.qtype == dns::type::A || parsed.query.qtype == dns::type::AAAA);
  if (!address_query && !take_token(now_ms)) {
    out.rcode = dns::Rcode::Refused;
    if (parsed.ok) out.reply = dns::answer_rcode(parsed.query, dns::Rcode::Refused);
    std::string line = event("dns-flood", sandbox_).num("qtype", parsed.ok ? parsed.query.qtype : -1).done();
    line.pop_back();
    note(flood_window_, now_ms, out, std::move(line));
    return out;
  }
  if (!parsed.ok) {
    out.rcode = parsed.error;
    out.reply = dns::error_reply(msg, parsed.error);
    return out;
  }
  const dns::Query& q = parsed.query;

  auto host = rules::canonicalize_host(q.name);
  rules::DnsVerdict v;
  if (!host.ok()) {
    v.reason = "bad-name";
  } else {
    v = verdict(host.value());
  }
  if (!v.resolve || v.would_deny) {
    JsonLine j = event(v.would_deny ? "dns-would-deny" : "dns-denied", sandbox_);
    j.str("name", host.ok() ? std::string_view(host->text) : std::string_view(q.name))
        .num("qtype", q.qtype)
        .str("reason", v.reason)
        .str("policy", policy_name);
    if (!v.rule.empty()) j.str("rule", v.rule);
    out.log.push_back(j.done());
  }
  if (!v.resolve) {
    out.rcode = dns::Rcode::NxDomain;
    out.reply = dns::answer_rcode(q, dns::Rcode::NxDomain);
    return out;
  }
  if (!address_query) {  // a name that may be reached has no records of other types
    out.reply = dns::answer_rcode(q, dns::Rcode::NoError);
    return out;
  }
  auto addrs = map_.assign(host->text);
  if (!addrs) {
    // Full: refused (a temporary condition to the program), never a reused address.
    out.rcode = dns::Rcode::Refused;
    out.reply = dns::answer_rcode(q, dns::Rcode::Refused);
    std::string line = event("dns-map-full", sandbox_)
                           .str("name", host->text)
                           .num("max_names", static_cast<int64_t>(map_.capacity()))
                           .done();
    line.pop_back();
    note(full_window_, now_ms, out, std::move(line));
    return out;
  }
  out.reply = dns::answer_addresses(q, {addrs->v4, addrs->v6}, ttl_s_);
  return out;
}

}  // namespace sluice::proxy
