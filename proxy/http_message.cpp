#include "proxy/http_message.hpp"

#include "rules/host.hpp"

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <vector>

namespace sluice::proxy {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection", "keep-alive",     "proxy-connection",
                                                "te",         "trailer",        "transfer-encoding",
                                                "upgrade",    "content-length", "http2-settings"};
  for (auto n : kNames)
    if (iequals(n, name)) return true;
  return name.size() >= 6 && strncasecmp(name.data(), "proxy-", 6) == 0;
}

std::vector<std::string> connection_tokens(const HeaderList& headers) {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (!iequals(k, "connection")) continue;
    size_t i = 0;
    while (i < v.size()) {
      size_t j = v.find(',', i);
      if (j == std::string::npos) j = v.size();
      std::string_view tok(v.data() + i, j - i);
      while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
      while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
      if (!tok.empty()) out.emplace_back(tok);
      i = j + 1;
    }
  }
  return out;
}

void append_headers(std::string& out, const HeaderList& headers) {
  for (const auto& [k, v] : headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
}

}  // namespace

rules::Result<AbsoluteUrl> parse_inspected_target(std::string_view t) {
  if (!t.empty() && t.front() == '/') {
    for (unsigned char c : t)
      if (c <= 0x20 || c >= 0x7f) return rules::Err{"invalid byte in request target (percent-encode it)"};
    AbsoluteUrl url;
    url.port = 443;
    url.path = std::string(t.substr(0, t.find('#')));
    return url;
  }
  if (t.size() < 8 || strncasecmp(t.data(), "https://", 8) != 0)
    return rules::Err{"inside an HTTPS tunnel a request target is /path or https://host/path"};
  std::string as_http = "http://";
  as_http.append(t.substr(8));
  auto url = parse_absolute_url(as_http);
  if (url && !url->port_explicit) url->port = 443;
  return url;
}

rules::Result<AbsoluteUrl> parse_absolute_url(std::string_view t) {
  constexpr std::string_view kScheme = "http://";
  if (t.size() < kScheme.size() || strncasecmp(t.data(), kScheme.data(), kScheme.size()) != 0) {
    if (!t.empty() && t.front() == '/')
      return rules::Err{"origin-form request: a proxy needs an absolute URL (http://host/path)"};
    if (t.size() >= 8 && strncasecmp(t.data(), "https://", 8) == 0)
      return rules::Err{"https:// URL in a plain request: use CONNECT for https"};
    return rules::Err{"unsupported request target: only http:// URLs are proxied"};
  }
  t.remove_prefix(kScheme.size());
  // RFC 3986 has no raw spaces, controls or non-ASCII bytes in a URI; llhttp 8 lets tabs and
  // high bytes through, and an origin might split the request line on them.
  for (unsigned char c : t)
    if (c <= 0x20 || c >= 0x7f) return rules::Err{"invalid byte in request target (percent-encode it)"};
  size_t end = t.find_first_of("/?#");
  std::string_view authority = t.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view{} : t.substr(end);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  AbsoluteUrl url;
  if (authority.empty()) return rules::Err{"URL has no host"};
  auto split = rules::split_authority(authority, false);  // the same splitter as CONNECT targets
  if (!split)
    return rules::Err{split.error() == "empty host" ? "URL has no host" : "bad URL authority: " + split.error()};
  std::string_view host = split->host;
  std::string_view port = split->port;
  url.port_explicit = split->has_port;
  if (url.port_explicit) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535)
      return rules::Err{"bad port in URL"};
    url.port = static_cast<uint16_t>(value);
  }
  url.host = std::string(host);
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  if (rest.empty() || rest.front() != '/') url.path = "/";
  url.path.append(rest);
  return url;
}

HeaderList end_to_end_headers(const HeaderList& in) {
  auto named = connection_tokens(in);
  HeaderList out;
  out.reserve(in.size());
  for (const auto& h : in) {
    if (is_hop_by_hop(h.first)) continue;
    bool listed = std::any_of(named.begin(), named.end(), [&](const std::string& n) { return iequals(n, h.first); });
    if (!listed) out.push_back(h);
  }
  return out;
}

std::string build_upstream_request(const HttpHead& req, const AbsoluteUrl& url, const std::string& host_header,
                                   std::string_view upgrade) {
  std::string out;
  out.reserve(512);
  out += req.method;
  out += ' ';
  out += url.path;
  out += " HTTP/1.1\r\nHost: ";
  out += host_header;
  out += "\r\n";
  for (const auto& h : end_to_end_headers(req.headers)) {
    if (iequals(h.first, "host")) continue;  // rebuilt from the URL above
    out += h.first + ": " + h.second + "\r\n";
  }
  if (req.chunked)
    out += "Transfer-Encoding: chunked\r\n";
  else if (req.has_content_length)
    out += "Content-Length: " + std::to_string(req.content_length) + "\r\n";
  if (!upgrade.empty()) {
    out += "Connection: Upgrade\r\nUpgrade: ";
    out += upgrade;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

std::string build_client_response(const HttpHead& resp, bool chunked, bool close, std::string_view upgrade) {
  std::string out;
  out.reserve(512);
  out += "HTTP/1.1 " + std::to_string(resp.status) + " ";
  out += resp.reason.empty() ? status_text(resp.status) : resp.reason;
  out += "\r\n";
  append_headers(out, end_to_end_headers(resp.headers));
  if (chunked)
    out += "Transfer-Encoding: chunked\r\n";
  else if (resp.has_content_length)
    out += "Content-Length: " + std::to_string(resp.content_length) + "\r\n";
  if (close) out += "Connection: close\r\n";
  if (!upgrade.empty()) {
    out += "Connection: Upgrade\r\nUpgrade: ";
    out += upgrade;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

std::string error_response(int status, std::string_view reason_code, std::string_view body_line,
                           std::string_view extra_headers, bool close) {
  std::string body(body_line);
  body += '\n';
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
  out += "X-Sluice-Reason: ";
  out += reason_code;
  out += "\r\n";
  out += extra_headers;
  out += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
         (close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
  out += body;
  return out;
}

const char* status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

}  // namespace sluice::proxy
