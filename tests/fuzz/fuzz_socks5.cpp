// The SOCKS5 parsers as SocksSession drives them: greeting, username/password,
// request, each on what is left of the input. Invariants: a parser never
// consumes more than it was given; every proper prefix of a message it accepts
// needs more (never an error, never a different message), so how the bytes
// arrive cannot change what sluice decides; an accepted request names a port.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/socks5.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace sluice::proxy::socks5;
using sluice::fuzz::escaped;

namespace {

template <class Parse>
size_t check_prefixes(std::string_view in, Parse parse) {
  auto whole = parse(in);
  const std::string why = "input=\"" + escaped(in) + "\"";
  FUZZ_CHECK(whole.consumed <= in.size(), why);
  if (whole.status != Status::Done) return 0;
  FUZZ_CHECK(whole.consumed > 0, why);
  for (size_t cut = 0; cut < whole.consumed; ++cut)
    FUZZ_CHECK(parse(in.substr(0, cut)).status == Status::NeedMore, why + " cut=" + std::to_string(cut));
  auto exact = parse(in.substr(0, whole.consumed));
  FUZZ_CHECK(exact.status == Status::Done && exact.consumed == whole.consumed, why);
  return whole.consumed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t used = check_prefixes(in, parse_greeting);
  if (used == 0) return 0;
  in.remove_prefix(used);
  if (!in.empty() && in[0] == 0x01) {  // a username/password sub-negotiation first
    used = check_prefixes(in, parse_user_pass);
    if (used == 0) return 0;
    in.remove_prefix(used);
  }
  used = check_prefixes(in, parse_request);
  if (used > 0) {
    auto r = parse_request(in);
    // Port 0 is the usual form of BIND and UDP ASSOCIATE (answered 0x07); a CONNECT needs a port.
    FUZZ_CHECK(r.port != 0 || r.command != static_cast<uint8_t>(sluice::proxy::socks5::Command::Connect),
               "request=\"" + escaped(in) + "\"");
    FUZZ_CHECK(!r.host.empty(), "request=\"" + escaped(in) + "\"");
  }
  return 0;
}
