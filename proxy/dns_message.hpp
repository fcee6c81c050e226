// DNS wire format (RFC 1035) for the transparent jail's resolver: sluice parses the
// one question of a stub query and encodes its own answer (a fake address, an empty
// NOERROR, NXDOMAIN, REFUSED...). Pure byte work with a bound on every length, so
// every malformed query is a table row in tests/proxy/test_dns_message.cpp and a
// fuzz input (tests/fuzz/fuzz_dns.cpp). Only what a stub resolver sends is accepted:
// a standard query, one question, no answers; anything else gets an error rcode.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/ip.hpp"

namespace sluice::proxy::dns {

inline constexpr size_t kHeaderBytes = 12;
// Bigger than any query a stub resolver sends (a question is at most 4 + 255 bytes,
// an EDNS OPT record a few dozen); a longer message is refused without parsing.
inline constexpr size_t kMaxQueryBytes = 1232;
inline constexpr size_t kMaxNameWireBytes = 255;  // RFC 1035 2.3.4
inline constexpr size_t kMaxLabelBytes = 63;
// An answer carries at most this many addresses (keeps every answer under 512 bytes).
inline constexpr size_t kMaxAnswerAddresses = 8;

namespace type {
inline constexpr uint16_t A = 1;
inline constexpr uint16_t NS = 2;
inline constexpr uint16_t CNAME = 5;
inline constexpr uint16_t Null = 10;
inline constexpr uint16_t PTR = 12;
inline constexpr uint16_t MX = 15;
inline constexpr uint16_t TXT = 16;
inline constexpr uint16_t AAAA = 28;
inline constexpr uint16_t Any = 255;
}  // namespace type
inline constexpr uint16_t kClassIn = 1;

enum class Rcode : uint8_t { NoError = 0, FormErr = 1, ServFail = 2, NxDomain = 3, NotImp = 4, Refused = 5 };
const char* rcode_text(Rcode r);  // "NOERROR", "NXDOMAIN", ... for logs

struct Query {
  uint16_t id = 0;
  bool recursion_desired = false;
  // Lower-case dotted name without the trailing dot ("" is the root). Labels hold
  // only printable ASCII other than '.', so the dotted text is unambiguous.
  std::string name;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  // The question as sent (name, type, class), echoed in the answer unchanged so
  // a resolver that randomises the case of the name (0x20 bits) accepts it.
  std::string question;
};

struct ParsedQuery {
  bool ok = false;
  Query query;                   // ok
  Rcode error = Rcode::FormErr;  // !ok: the rcode to answer with (see error_reply)
  std::string reason;            // !ok: why, for the log
};
ParsedQuery parse_query(std::string_view msg);

// The answer to a parsed query: the question echoed, one record per address of the
// question's family (A: IPv4 ones, AAAA: IPv6 ones, at most kMaxAnswerAddresses),
// TTL `ttl` seconds. No address of that family: an empty NOERROR answer.
std::string answer_addresses(const Query& q, const std::vector<rules::IpAddr>& addrs, uint32_t ttl);
// An answer with no records and rcode `r` (NXDOMAIN, REFUSED, SERVFAIL, empty NOERROR).
std::string answer_rcode(const Query& q, Rcode r);
// The answer to a query parse_query refused: the header (same id) with rcode `r`
// and no question. Nothing (stay silent) for a message too short to carry an id
// or one that is itself a response, so two resolvers never answer each other forever.
std::optional<std::string> error_reply(std::string_view msg, Rcode r);

// DNS over TCP (RFC 1035 4.2.2): each message behind a two-byte big-endian length.
enum class FrameStatus { NeedMore, Done, Error };
struct Frame {
  FrameStatus status = FrameStatus::NeedMore;
  size_t consumed = 0;       // Done: length prefix + message
  std::string_view message;  // Done: a view into the input
  std::string error;
};
// A frame of length 0 or longer than `max_message` is an Error (close the stream).
Frame parse_tcp_frame(std::string_view in, size_t max_message = kMaxQueryBytes);
// `msg` prefixed with its length; msg must be at most 65535 bytes.
std::string tcp_frame(std::string_view msg);

}  // namespace sluice::proxy::dns
