// Host and address text: canonicalize_host, split_host_port, IpAddr::parse,
// IpAddr::parse_lenient_v4 and Cidr::parse, each on the whole input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rules/host.hpp"
#include "rules/ip.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using sluice::fuzz::escaped;
using sluice::rules::Cidr;
using sluice::rules::IpAddr;

namespace {

void check_addr_text(const IpAddr& a, std::string_view raw) {
  const std::string text = a.to_string();
  const std::string why = "raw=\"" + escaped(raw) + "\" text=\"" + text + "\"";
  auto again = IpAddr::parse(text);
  FUZZ_CHECK(again.has_value(), why);
  FUZZ_CHECK(*again == a, why);
  FUZZ_CHECK(again->to_string() == text, why);
  if (!a.v6) {
    for (int i = 4; i < 16; ++i) FUZZ_CHECK(a.bytes[static_cast<size_t>(i)] == 0, why);
  }
}

void host(std::string_view s) {
  auto c = sluice::rules::canonicalize_host(s);
  if (c)
    sluice::fuzz::check_canonical_host(c.value(), s);
  else
    FUZZ_CHECK(!c.error().empty(), escaped(s));
}

void host_port(std::string_view s) {
  auto hp = sluice::rules::split_host_port(s);
  if (!hp) return;
  const std::string why = "raw=\"" + escaped(s) + "\" host=\"" + escaped(hp->host) + "\"";
  FUZZ_CHECK(hp->port != 0, why);
  FUZZ_CHECK(!hp->host.empty(), why);
  // Written back the way a client would, it splits into the same parts.
  std::string back = hp->host.find(':') != std::string::npos ? "[" + hp->host + "]" : hp->host;
  back += ":" + std::to_string(hp->port);
  auto again = sluice::rules::split_host_port(back);
  FUZZ_CHECK(again.ok(), why + " back=\"" + escaped(back) + "\"");
  FUZZ_CHECK(again->host == hp->host && again->port == hp->port, why);
  // A bracketed authority holds an IPv6 address, and that is what it canonicalises to.
  if (s.front() == '[') {
    auto ip = IpAddr::parse(hp->host);
    FUZZ_CHECK(ip.has_value() && ip->v6, why);
  }
  host(hp->host);
}

void ip(std::string_view s) {
  auto strict = IpAddr::parse(s);
  if (strict) {
    check_addr_text(*strict, s);
    // An address in its strict spelling is that address as a host, too.
    auto c = sluice::rules::canonicalize_host(s);
    FUZZ_CHECK(c.ok() && c->kind == sluice::rules::HostKind::Ip && c->addr == *strict, escaped(s));
  }
  auto lenient = IpAddr::parse_lenient_v4(s);
  if (lenient) {
    FUZZ_CHECK(!lenient->v6, escaped(s));
    check_addr_text(*lenient, s);
    // Where the strict parser accepts the text too, both must read the same address.
    if (strict) FUZZ_CHECK(*strict == *lenient, escaped(s));
    // A lenient spelling never canonicalises to some other address.
    auto c = sluice::rules::canonicalize_host(s);
    if (c) FUZZ_CHECK(c->kind == sluice::rules::HostKind::Ip && c->addr == *lenient, escaped(s));
  }
  auto cidr = Cidr::parse(s);
  if (cidr) {
    const std::string text = cidr->to_string();
    const std::string why = "raw=\"" + escaped(s) + "\" cidr=\"" + text + "\"";
    FUZZ_CHECK(cidr->prefix >= 0 && cidr->prefix <= cidr->base.bits(), why);
    FUZZ_CHECK(cidr->contains(cidr->base), why);
    auto again = Cidr::parse(text);
    FUZZ_CHECK(again.has_value() && *again == *cidr, why);
    check_addr_text(cidr->base, s);
    if (strict) FUZZ_CHECK(cidr->prefix == strict->bits() && cidr->base == *strict, why);
    // The last address of the block is in it; flipping a bit above the prefix leaves it.
    IpAddr last = cidr->base;
    for (int bit = cidr->prefix; bit < last.bits(); ++bit)
      last.bytes[static_cast<size_t>(bit / 8)] |= static_cast<uint8_t>(0x80 >> (bit % 8));
    FUZZ_CHECK(cidr->contains(last), why);
    if (cidr->prefix > 0) {
      IpAddr out = cidr->base;
      int bit = cidr->prefix - 1;
      out.bytes[static_cast<size_t>(bit / 8)] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
      FUZZ_CHECK(!cidr->contains(out), why);
    }
    IpAddr other = cidr->base;
    other.v6 = !other.v6;
    FUZZ_CHECK(!cidr->contains(other), why);  // families never mix
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string_view s(reinterpret_cast<const char*>(data), size);
  host(s);
  if (!s.empty()) host_port(s);
  ip(s);
  return 0;
}
