// The messages on a hand-over channel (proxy/worker.hpp, adopt_channel): the in-jail
// bridge passes each connection's socket to the proxy with one message (SCM_RIGHTS, libuv
// IPC framing: the descriptor arrives with the message's first byte).
//
//   'c'                                 an explicit-proxy client (it speaks HTTP or SOCKS5)
//   't' LEN(u32 BE) BODY                a transparent connection (issue 16), decided by the
//                                       bridge: BODY = TLEN(u16 BE) TARGET OLEN(u16 BE) ORIGINAL
//                                       KIND(u8) FLEN(u32 BE) FIRST
//
// TARGET is what sluice judges ("name:port" or an IP literal with port), ORIGINAL the
// address CMD dialed ("198.18.0.1:443", "[fd00::1]:22"), KIND what the first bytes are
// (0 other, 1 a TLS handshake record, 2 an HTTP request) and FIRST the bytes the bridge
// already read from the program (its ClientHello or request head), which go upstream first.
//
// The bridge runs inside the jail: a message is checked, never trusted to be well formed.
// Every length is bounded, TARGET and ORIGINAL are printable ASCII without spaces, nothing
// trails BODY; anything else is Malformed and the channel is closed (with the descriptors
// queued on it). Pure; unit-tested and fuzzed in tests/proxy/test_handover_frame.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::proxy {

enum class FirstBytesKind : uint8_t { Other = 0, Tls = 1, Http = 2 };

inline constexpr size_t kMaxHandOverTarget = 300;  // a 253-byte name, ':' and a port, with room
inline constexpr size_t kMaxHandOverOriginal = 64;
inline constexpr size_t kMaxHandOverFirstBytes = 16384;  // the bridge's own first-bytes limit
inline constexpr size_t kMaxHandOverBody =
    2 + kMaxHandOverTarget + 2 + kMaxHandOverOriginal + 1 + 4 + kMaxHandOverFirstBytes;
inline constexpr size_t kMaxHandOverMessage = 1 + 4 + kMaxHandOverBody;

struct TransparentStart {
  std::string target;
  std::string original_dst;
  FirstBytesKind first_kind = FirstBytesKind::Other;
  std::string first;
};

std::string plain_handover_message();
// The caller keeps within the bounds above (the bridge's first bytes are capped already);
// an out-of-bounds field yields "" (nothing to send).
std::string transparent_handover_message(const TransparentStart& t);

struct ChannelMessage {
  enum class Status { NeedMore, Plain, Transparent, Malformed };
  Status status = Status::NeedMore;
  size_t consumed = 0;     // Plain, Transparent: the message's bytes at the front of the input
  TransparentStart start;  // Transparent
  const char* error = "";  // Malformed: what was wrong, for the log
};

// The first message in `in`. NeedMore until it is complete (never past kMaxHandOverMessage).
ChannelMessage parse_channel_message(std::string_view in);

}  // namespace sluice::proxy
