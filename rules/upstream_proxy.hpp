// A parent proxy ("upstream_proxy:"): what sluice dials instead of the target once
// sluice itself has allowed the target. Pure: the URL model and the wire bytes of the
// parent handshakes (HTTP CONNECT, SOCKS5 per RFC 1928/1929); proxy/parent_proxy.hpp
// drives them on a socket.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rules/credentials.hpp"
#include "rules/host.hpp"
#include "rules/host_set.hpp"
#include "rules/ip.hpp"
#include "rules/result.hpp"

namespace sluice::rules {

struct UpstreamProxy {
  // Socks5: sluice resolves and checks the target and hands the parent an address.
  // Http, Socks5h: the parent gets the name and resolves it itself, so sluice's
  // resolved-address check cannot run for names (IP literals are still checked).
  enum class Scheme { Http, Socks5, Socks5h };
  Scheme scheme = Scheme::Http;
  std::string host;  // a name or an IP literal (brackets stripped)
  uint16_t port = 0;
  std::optional<Credentials> auth;
  std::shared_ptr<const HostSet> bypass;  // targets matching one of these are dialed directly

  bool parent_resolves() const { return scheme != Scheme::Socks5; }
  bool bypassed(const CanonicalHost& target, uint16_t target_port) const {
    return bypass && bypass->match(target, target_port) != nullptr;
  }
  // "http://host:port", never with the credentials: safe for logs and error bodies.
  std::string display() const;
};
const char* to_string(UpstreamProxy::Scheme s);

// "http://[user:pass@]host:port[/]", "socks5://...", "socks5h://..."; userinfo is
// percent-decoded. The port is required. Errors never quote the password.
Result<UpstreamProxy> parse_upstream_proxy_url(std::string_view url);

// The parent `sluice run --upstream-proxy-from-env` takes from its starting environment:
// HTTPS_PROXY, else HTTP_PROXY (upper case first, then lower case); a value without a
// scheme is http://. NO_PROXY (else no_proxy) becomes the parent's bypass list.
// `getenv` is injected for tests. Errors never quote the value (it may hold a password).
Result<UpstreamProxy> upstream_proxy_from_env(const char* (*getenv)(const char*));
// NO_PROXY as bypass patterns: entries split on commas or blanks; "example.com" and
// ".example.com" both mean the name and its subdomains (curl's reading), IPs, CIDRs and
// ":port" suffixes as in allow lists. "*" and entries that are no pattern are errors, not
// silently dropped. An empty value gives no set (nullptr).
Result<std::shared_ptr<const HostSet>> no_proxy_bypass(std::string_view value);

// ---- HTTP parent ----
// "CONNECT host:port HTTP/1.1" with Host and, with credentials, Proxy-Authorization.
std::string http_connect_request(const std::string& authority, const std::optional<Credentials>& auth);
// "Basic base64(user:pass)".
std::string basic_authorization(const Credentials& c);
// The status code of a response head ("HTTP/1.1 200 Connection established\r\n..."), or 0
// when it is not one. `reason` gets the status line's text.
int http_reply_status(std::string_view head, std::string* reason = nullptr);
// Rewrites a request head sluice built for an origin (origin-form target) into the form a
// parent wants: absolute-form "http://authority/path", plus Proxy-Authorization when set.
std::string to_parent_form(std::string_view origin_head, const std::string& authority,
                           const std::optional<Credentials>& auth);

// ---- SOCKS5 parent ----
std::string socks5_greeting(bool with_auth);            // VER, NMETHODS, METHODS
std::string socks5_auth_request(const Credentials& c);  // RFC 1929
// CONNECT to a name (socks5h) or an address (socks5).
std::string socks5_connect_request(const std::string& name, const std::optional<IpAddr>& addr, uint16_t port);
// How many bytes the reply to a CONNECT has in all, given its first 5 bytes; 0 when malformed.
size_t socks5_reply_length(std::string_view first5);
const char* socks5_reply_text(uint8_t rep);

}  // namespace sluice::rules
