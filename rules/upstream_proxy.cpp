#include "rules/upstream_proxy.hpp"

#include <cctype>

#include "rules/pattern.hpp"
#include "rules/percent.hpp"
#include "rules/text_detail.hpp"

namespace sluice::rules {

const char* to_string(UpstreamProxy::Scheme s) {
  switch (s) {
    case UpstreamProxy::Scheme::Http: return "http";
    case UpstreamProxy::Scheme::Socks5: return "socks5";
    case UpstreamProxy::Scheme::Socks5h: return "socks5h";
  }
  return "?";
}

std::string UpstreamProxy::display() const {
  bool v6 = host.find(':') != std::string::npos;
  return std::string(to_string(scheme)) + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<UpstreamProxy> parse_upstream_proxy_url(std::string_view url) {
  UpstreamProxy p;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos)
    return Err{"upstream proxy must be a URL like http://host:port or socks5://host:port"};
  std::string scheme(url.substr(0, sep));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "http")
    p.scheme = UpstreamProxy::Scheme::Http;
  else if (scheme == "socks5")
    p.scheme = UpstreamProxy::Scheme::Socks5;
  else if (scheme == "socks5h")
    p.scheme = UpstreamProxy::Scheme::Socks5h;
  else
    return Err{"upstream proxy scheme must be http, socks5 or socks5h, not '" + detail::printable(scheme) + "'"};
  std::string_view rest = url.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#") != std::string_view::npos)
    return Err{"upstream proxy URL must not have a path, query or fragment"};
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    auto pass =
        colon == std::string_view::npos ? std::optional<std::string>{} : percent_decode(userinfo.substr(colon + 1));
    // The password is never quoted: these messages reach logs and terminals.
    if (!user || !pass) return Err{"upstream proxy URL credentials must be user:password (percent-encoded)"};
    if (user->empty() || user->size() > 255 || pass->empty() || pass->size() > 255)
      return Err{"upstream proxy URL username and password must be 1 to 255 bytes long"};
    if (user->find(':') != std::string::npos) return Err{"upstream proxy username must not contain ':'"};
    p.auth = Credentials{*user, *pass};
  }
  auto hp = split_host_port(rest);
  if (!hp || hp->port == 0 || hp->host.empty())
    return Err{"upstream proxy URL needs host:port, not '" + detail::printable(std::string(rest)) + "'"};
  p.host = hp->host;
  p.port = hp->port;
  return p;
}

Result<std::shared_ptr<const HostSet>> no_proxy_bypass(std::string_view value) {
  auto set = std::make_shared<HostSet>();
  size_t at = 0;
  while (at <= value.size()) {
    size_t end = value.find_first_of(", \t", at);
    if (end == std::string_view::npos) end = value.size();
    std::string_view entry = value.substr(at, end - at);
    at = end + 1;
    if (entry.empty()) continue;
    if (entry == "*") return Err{"NO_PROXY=* sends nothing through the parent: drop --upstream-proxy-from-env instead"};
    // curl's reading: ".example.com" and "example.com" both mean the name and its subdomains.
    if (entry.front() == '.') entry.remove_prefix(1);
    auto exact = parse_pattern(entry);
    if (!exact) return Err{"NO_PROXY entry '" + detail::printable(std::string(entry)) + "': " + exact.error()};
    const bool is_name = exact->kind == HostPattern::Kind::Exact;
    HostPattern subdomains = exact.value();
    set->add(std::move(exact.value()));
    if (is_name) {
      subdomains.kind = HostPattern::Kind::Subdomains;
      subdomains.source = "*." + subdomains.source;
      set->add(std::move(subdomains));
    }
  }
  if (set->empty()) return std::shared_ptr<const HostSet>();
  return std::shared_ptr<const HostSet>(std::move(set));
}

Result<UpstreamProxy> upstream_proxy_from_env(const char* (*getenv)(const char*)) {
  for (const char* name : {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"}) {
    const char* v = getenv(name);
    if (v == nullptr || *v == '\0') continue;
    std::string url = v;
    if (url.find("://") == std::string::npos) url = "http://" + url;
    auto p = parse_upstream_proxy_url(url);
    if (!p) return Err{std::string(name) + ": " + p.error()};
    for (const char* no_name : {"NO_PROXY", "no_proxy"}) {
      const char* no = getenv(no_name);
      if (no == nullptr || *no == '\0') continue;
      auto bypass = no_proxy_bypass(no);
      if (!bypass) return Err{std::string(no_name) + ": " + bypass.error()};
      p->bypass = std::move(bypass.value());
      break;
    }
    return p;
  }
  return Err{"neither HTTPS_PROXY nor HTTP_PROXY is set"};
}

std::string basic_authorization(const Credentials& c) {
  return "Basic " + base64_encode(c.username + ":" + c.password);
}

std::string http_connect_request(const std::string& authority, const std::optional<Credentials>& auth) {
  std::string out = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (auth) out += "Proxy-Authorization: " + basic_authorization(*auth) + "\r\n";
  return out + "\r\n";
}

int http_reply_status(std::string_view head, std::string* reason) {
  // "HTTP/1.x SSS[ reason]"
  if (head.size() < 12 || head.substr(0, 7) != "HTTP/1." || head[8] != ' ') return 0;
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (head[i] < '0' || head[i] > '9') return 0;
    status = status * 10 + (head[i] - '0');
  }
  if (head.size() > 12 && head[12] != ' ' && head[12] != '\r') return 0;
  if (reason) {
    size_t end = head.find("\r\n");
    std::string_view r = head.size() > 13 ? head.substr(13, end == std::string_view::npos ? end : end - 13) : "";
    *reason = detail::printable(std::string(r.substr(0, 100)));
  }
  return status;
}

std::string to_parent_form(std::string_view origin_head, const std::string& authority,
                           const std::optional<Credentials>& auth) {
  size_t sp = origin_head.find(' ');
  size_t line_end = origin_head.find("\r\n");
  if (sp == std::string_view::npos || line_end == std::string_view::npos || sp > line_end)
    return std::string(origin_head);
  std::string out(origin_head.substr(0, sp + 1));
  out += "http://" + authority;
  out += origin_head.substr(sp + 1, line_end + 2 - sp - 1);
  if (auth) out += "Proxy-Authorization: " + basic_authorization(*auth) + "\r\n";
  out += origin_head.substr(line_end + 2);
  return out;
}

std::string socks5_greeting(bool with_auth) {
  return with_auth ? std::string("\x05\x02\x00\x02", 4) : std::string("\x05\x01\x00", 3);
}

std::string socks5_auth_request(const Credentials& c) {
  std::string out = "\x01";
  out += static_cast<char>(c.username.size());
  out += c.username;
  out += static_cast<char>(c.password.size());
  out += c.password;
  return out;
}

std::string socks5_connect_request(const std::string& name, const std::optional<IpAddr>& addr, uint16_t port) {
  std::string out("\x05\x01\x00", 3);
  if (addr) {
    out += addr->v6 ? '\x04' : '\x01';
    out.append(reinterpret_cast<const char*>(addr->bytes.data()), addr->v6 ? 16 : 4);
  } else {
    out += '\x03';
    out += static_cast<char>(name.size());  // names are at most 253 bytes once canonical
    out += name;
  }
  out += static_cast<char>(port >> 8);
  out += static_cast<char>(port & 0xff);
  return out;
}

size_t socks5_reply_length(std::string_view first5) {
  if (first5.size() < 5 || first5[0] != 5) return 0;
  switch (first5[3]) {
    case 1: return 4 + 4 + 2;
    case 4: return 4 + 16 + 2;
    case 3: return 4 + 1 + static_cast<uint8_t>(first5[4]) + 2;
    default: return 0;
  }
}

const char* socks5_reply_text(uint8_t rep) {
  switch (rep) {
    case 0: return "succeeded";
    case 1: return "general failure";
    case 2: return "connection not allowed by ruleset";
    case 3: return "network unreachable";
    case 4: return "host unreachable";
    case 5: return "connection refused";
    case 6: return "TTL expired";
    case 7: return "command not supported";
    case 8: return "address type not supported";
    default: return "unknown reply";
  }
}

}  // namespace sluice::rules
