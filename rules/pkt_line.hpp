// Git's pkt-line framing and the request half of a push (gitprotocol-common, gitprotocol-pack),
// read the way git's receive-pack reads them, so the git guard (rules/git_guard.hpp) judges the
// same commands the server would run. Pure: bytes in, values out; fed incrementally.
//
//   pkt-line  = 4 hex digits (the length, header included) + payload; "0000" flush,
//               "0001" delim, "0002" response-end; 0003 and > 65520 are errors
//   request   = *("shallow" SP oid) ( command-list | push-cert ) [push-options] [pack]
//   command   = old-oid SP new-oid SP ref  [NUL capabilities on any line, as git reads them]
//   push-cert = "push-cert" NUL caps LF, header lines, LF, commands, signature, "push-cert-end" LF, flush
//
// Fail closed: anything git's receive-pack would die on, and anything it would read in a way
// this parser does not model, is an Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::rules {

constexpr size_t kPktLineMax = 65520;  // LARGE_PACKET_MAX: the largest pkt-line, header included

enum class PktKind : uint8_t { Data, Flush, Delim, ResponseEnd };

struct PktParse {
  enum class Status : uint8_t { Packet, NeedMore, Error };
  Status status = Status::NeedMore;
  PktKind kind = PktKind::Data;
  std::string_view payload;  // Data only: the bytes after the 4-digit header (a view into the input)
  size_t size = 0;           // bytes the packet takes in the input (Packet only)
  std::string error;         // Error only
};

// The first pkt-line of `in`. Hex digits in either case (git reads both).
PktParse parse_pkt_line(std::string_view in);

// Buffers fed bytes and hands out whole packets. A packet's payload stays valid until the
// next feed() or next().
class PktLineReader {
 public:
  void feed(std::string_view bytes);
  PktParse next();
  size_t consumed() const { return consumed_; }  // bytes of all packets handed out so far
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  size_t consumed_ = 0;
};

struct RefCommand {
  std::string old_oid;  // lower-case hex, 40 (SHA-1) or 64 (SHA-256) digits
  std::string new_oid;
  std::string ref;  // a full ref name, checked like git's check_refname_format ("refs/...")
  bool is_create() const { return old_oid.find_first_not_of('0') == std::string::npos; }
  bool is_delete() const { return new_oid.find_first_not_of('0') == std::string::npos; }
};

struct ReceivePackRequest {
  std::vector<RefCommand> commands;       // unsigned commands, or those of the push certificate
  std::vector<std::string> capabilities;  // from every line that carried a NUL, in order
  std::vector<std::string> push_options;  // when the push-options capability was sent
  std::vector<std::string> shallow;       // "shallow <oid>" lines before the commands
  bool push_cert = false;                 // the commands came in a push certificate (signed push)
  size_t oid_hex_len = 40;                // 40: object-format=sha1 (the default); 64: sha256
  size_t pack_offset = 0;                 // body bytes before the pack (or the end, when none)

  // "name" or "name=value" sent.
  bool has_capability(std::string_view name) const;
  std::optional<std::string> capability_value(std::string_view name) const;
  // receive-pack answers in side-band only for side-band-64k (it never offers plain side-band).
  bool side_band_64k() const { return has_capability("side-band-64k"); }
  bool report_status() const { return has_capability("report-status") || has_capability("report-status-v2"); }
};

// Reads a receive-pack request body (the POST to .../git-receive-pack) up to the start of the
// pack, fed in pieces. Done: request() holds everything before the pack. Error: error() says why.
class ReceivePackParser {
 public:
  enum class State : uint8_t { NeedMore, Done, Error };
  // `max_bytes`: the command section (commands, certificate, options) may not be larger.
  explicit ReceivePackParser(size_t max_bytes = 1024 * 1024) : max_bytes_(max_bytes) {}
  // Once Done or Error, further bytes are ignored and the state stays.
  State feed(std::string_view bytes);
  // The body ended: NeedMore becomes Error (a truncated command list is never forwarded).
  State finish();
  State state() const { return state_; }
  const ReceivePackRequest& request() const { return req_; }
  const std::string& error() const { return error_; }

 private:
  enum class Phase : uint8_t { Commands, Cert, Options };
  State fail(std::string why);
  State too_large();
  State step(const PktParse& p);
  State command_line(std::string_view payload);
  State cert_line(std::string_view payload);
  State end_of_commands();
  bool command(std::string_view line, std::string* why);

  size_t max_bytes_;
  PktLineReader reader_;
  State state_ = State::NeedMore;
  Phase phase_ = Phase::Commands;
  bool cert_ended_ = false;  // push-cert-end read: only the flush may follow
  bool oid_len_known_ = false;
  std::string cert_;  // the certificate's lines, as sent
  ReceivePackRequest req_;
  std::string error_;
};

// One-shot: the whole body at once (finish() applied).
struct ReceivePackParse {
  ReceivePackParser::State state = ReceivePackParser::State::Error;
  ReceivePackRequest request;
  std::string error;
};
ReceivePackParse parse_receive_pack(std::string_view body, size_t max_bytes = 1024 * 1024);

// git's check_refname_format for a full ref under "refs/" (no one-level names, no "@", no
// control bytes, no " ~^:?*[\", no "..", "@{", "//", no component starting with "." or ending
// with ".lock", no trailing "/" or ".").
bool valid_ref_name(std::string_view ref);

}  // namespace sluice::rules
