// Every reason sluice gives, in one table: the policy's verdict reasons (rules/) and the
// failures the data plane reports (proxy/). The text is what clients see in X-Sluice-Reason
// and what the decision log and metrics carry; the status is the HTTP answer of a refusal,
// the SOCKS5 reply its SOCKS answer. A new reason is one enum value and one table row:
// -Wswitch (with -Werror) refuses a reason without a row.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::rules {

enum class Reason : uint8_t {
  None,  // no reason yet (a verdict not made; a decision without a failure)
  // verdicts: the lists and the default
  DeniedByRule,
  NotInAllowlist,
  AllowedByRule,
  DefaultAllow,
  AskByDefault,
  NoPolicy,
  // verdicts: path-scoped entries (rules/path_entry.hpp)
  NeedsInspection,       // a tunnel to a host only path-scoped entries decide: paths unseen without TLS inspection
  AmbiguousPath,         // a request path origins read differently, on a host path-scoped entries decide
  AllowedForInspection,  // a tunnel to a host only path-scoped entries could allow: inspected, judged per request
  // verdicts: scripts
  DeniedByScript,
  AllowedByScript,
  AskByScript,
  ScriptError,
  AllowedOnScriptError,
  // verdicts: after an ask
  AskAllowed,
  AskDenied,
  AskTimeout,
  AskUnavailable,
  RememberedAllow,
  RememberedDeny,
  // failures: the client's request
  ProxyAuthRequired,
  ProxyAuthFailed,
  BadRequest,
  BadHost,
  HeaderTooLarge,
  UriTooLong,
  UnsupportedTransferCoding,
  HeaderTimeout,
  // failures: reaching the upstream
  DnsFailed,
  ResolvedAddressDenied,
  ConnectFailed,
  ConnectTimeout,
  UpstreamClosed,
  UpstreamTimeout,
  BadUpstreamResponse,
  // failures: TLS inspection (docs/tls.md)
  UpstreamTlsFailed,  // the upstream's certificate or handshake failed
  ClientTlsFailed,    // the client refused sluice's leaf (pinning, its own store)
  NotTls,             // bytes that are not a TLS ClientHello on an inspected tunnel
  HostMismatch,       // SNI, Host or an absolute URL naming another host than the tunnel's
  // failures: the credential gateway (docs/credentials.md)
  CredentialMisuse,       // a stand-in credential where it is not honoured (another host, plain HTTP, a URL)
  CredentialBodyRefused,  // replace_body: a body sluice cannot rewrite (over the cap, content-encoded)
  // failures: the git guard (rules/git_guard.hpp)
  GitDenied,          // a git request the guard refuses: repository not listed, fetch or push not allowed
  GitPushRefused,     // a push whose ref commands the rule refuses (answered as git reports it)
  GitPushUnreadable,  // a push body the guard cannot read (malformed, truncated, over the cap)
  // failures: a parent proxy (upstream_proxy:)
  UpstreamProxyFailed,
  UpstreamProxyAuth,
  UpstreamProxyTimeout,
  // failures: the proxy's own state
  TooManyConnections,
  ShuttingDown,
  // failures: SOCKS
  BadGreeting,
  NoAcceptableMethod,
  BadAuth,
  CommandNotSupported,
  AddressTypeNotSupported,
  Socks4Unsupported,
};

struct ReasonInfo {
  std::string_view text;
  int http_status;      // the HTTP status of a refusal for this reason (0: not an HTTP answer)
  uint8_t socks_reply;  // the SOCKS5 REP of a refusal for this reason (0: not a SOCKS answer)
  bool verdict;         // a policy verdict's reason (else a failure after or before judging)
};

constexpr ReasonInfo reason_info(Reason r) {
  switch (r) {
    case Reason::None: return {"", 0, 0, false};
    case Reason::DeniedByRule: return {"denied-by-rule", 403, 0x02, true};
    case Reason::NotInAllowlist: return {"not-in-allowlist", 403, 0x02, true};
    case Reason::NeedsInspection: return {"needs-inspection", 403, 0x02, true};
    case Reason::AmbiguousPath: return {"ambiguous-path", 403, 0x02, true};
    case Reason::AllowedForInspection: return {"allowed-for-inspection", 0, 0, true};
    case Reason::AllowedByRule: return {"allowed-by-rule", 0, 0, true};
    case Reason::DefaultAllow: return {"default-allow", 0, 0, true};
    case Reason::AskByDefault: return {"ask-by-default", 403, 0x02, true};
    case Reason::NoPolicy: return {"no-policy", 403, 0x02, true};
    case Reason::DeniedByScript: return {"denied-by-script", 403, 0x02, true};
    case Reason::AllowedByScript: return {"allowed-by-script", 0, 0, true};
    case Reason::AskByScript: return {"ask-by-script", 403, 0x02, true};
    case Reason::ScriptError: return {"script-error", 403, 0x02, true};
    case Reason::AllowedOnScriptError: return {"allowed-on-script-error", 0, 0, true};
    case Reason::AskAllowed: return {"ask-allowed", 0, 0, true};
    case Reason::AskDenied: return {"ask-denied", 403, 0x02, true};
    case Reason::AskTimeout: return {"ask-timeout", 403, 0x02, true};
    case Reason::AskUnavailable: return {"ask-unavailable", 403, 0x02, true};
    case Reason::RememberedAllow: return {"remembered-allow", 0, 0, true};
    case Reason::RememberedDeny: return {"remembered-deny", 403, 0x02, true};
    case Reason::ProxyAuthRequired: return {"proxy-auth-required", 407, 0, false};
    case Reason::ProxyAuthFailed: return {"proxy-auth-failed", 407, 0, false};
    case Reason::BadRequest: return {"bad-request", 400, 0x01, false};
    case Reason::BadHost: return {"bad-host", 400, 0x01, false};
    case Reason::HeaderTooLarge: return {"header-too-large", 431, 0, false};
    case Reason::UriTooLong: return {"uri-too-long", 414, 0, false};
    case Reason::UnsupportedTransferCoding: return {"unsupported-transfer-coding", 501, 0, false};
    case Reason::HeaderTimeout: return {"header-timeout", 408, 0x01, false};
    case Reason::DnsFailed: return {"dns-failed", 502, 0x04, false};
    case Reason::ResolvedAddressDenied: return {"resolved-address-denied", 403, 0x02, false};
    case Reason::ConnectFailed: return {"connect-failed", 502, 0x05, false};
    case Reason::ConnectTimeout: return {"connect-timeout", 504, 0x06, false};
    case Reason::UpstreamClosed: return {"upstream-closed", 502, 0, false};
    case Reason::UpstreamTimeout: return {"upstream-timeout", 504, 0, false};
    case Reason::BadUpstreamResponse: return {"bad-upstream-response", 502, 0, false};
    case Reason::UpstreamTlsFailed: return {"upstream-tls-failed", 502, 0x01, false};
    case Reason::ClientTlsFailed: return {"client-tls-failed", 0, 0, false};
    case Reason::NotTls: return {"not-tls", 0, 0, false};
    case Reason::HostMismatch: return {"host-mismatch", 421, 0x02, false};
    case Reason::CredentialMisuse: return {"credential-misuse", 403, 0x02, false};
    case Reason::CredentialBodyRefused: return {"credential-body-refused", 413, 0x02, false};
    case Reason::GitDenied: return {"git-denied", 403, 0x02, false};
    case Reason::GitPushRefused: return {"git-push-refused", 403, 0x02, false};
    case Reason::GitPushUnreadable: return {"git-push-unreadable", 403, 0x02, false};
    case Reason::UpstreamProxyFailed: return {"upstream-proxy-failed", 502, 0x01, false};
    case Reason::UpstreamProxyAuth: return {"upstream-proxy-auth", 502, 0x01, false};
    case Reason::UpstreamProxyTimeout: return {"upstream-proxy-timeout", 504, 0x06, false};
    case Reason::TooManyConnections: return {"too-many-connections", 503, 0, false};
    case Reason::ShuttingDown: return {"shutting-down", 503, 0x01, false};
    case Reason::BadGreeting: return {"bad-greeting", 0, 0, false};
    case Reason::NoAcceptableMethod: return {"no-acceptable-method", 0, 0, false};
    case Reason::BadAuth: return {"bad-auth", 0, 0, false};
    case Reason::CommandNotSupported: return {"command-not-supported", 0, 0x07, false};
    case Reason::AddressTypeNotSupported: return {"address-type-not-supported", 0, 0x08, false};
    case Reason::Socks4Unsupported: return {"socks4-unsupported", 0, 0, false};
  }
  return {"", 0, 0, false};
}

inline constexpr size_t kReasonCount = static_cast<size_t>(Reason::Socks4Unsupported) + 1;

constexpr std::string_view to_string(Reason r) { return reason_info(r).text; }
inline const char* c_str(Reason r) { return reason_info(r).text.data(); }  // table texts are literals
constexpr size_t index_of(Reason r) { return static_cast<size_t>(r); }

// The reason named `text`, for the state file and the control API (nullopt: unknown).
std::optional<Reason> reason_from_string(std::string_view text);

}  // namespace sluice::rules
