// The pkt-line reader and receive-pack request parser; rules/pkt_line.hpp says what is read.
// Each branch below mirrors git's builtin/receive-pack.c (read_head_info, queue_command,
// queue_commands_from_cert, read_push_options) so sluice and the server see the same commands.
#include "rules/pkt_line.hpp"

#include <algorithm>

namespace sluice::rules {

namespace {

int pkt_hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool pkt_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// One packet as git's reader hands it over with PACKET_READ_CHOMP_NEWLINE: a final LF dropped.
std::string_view pkt_chomp(std::string_view payload) {
  if (!payload.empty() && payload.back() == '\n') payload.remove_suffix(1);
  return payload;
}

// Signature starts git's parse_signed_buffer knows (gpg-interface.c).
bool pkt_signature_start(std::string_view line) {
  for (std::string_view sig : {"-----BEGIN PGP SIGNATURE-----", "-----BEGIN PGP MESSAGE-----",
                               "-----BEGIN SIGNED MESSAGE-----", "-----BEGIN SSH SIGNATURE-----"})
    if (line.substr(0, sig.size()) == sig) return true;
  return false;
}

std::string pkt_printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 80)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (s.size() > 80) out += "...";
  return out;
}

}  // namespace

PktParse parse_pkt_line(std::string_view in) {
  PktParse out;
  if (in.size() < 4) return out;  // NeedMore
  size_t len = 0;
  for (size_t i = 0; i < 4; ++i) {
    const int d = pkt_hex_digit(in[i]);
    if (d < 0) {
      out.status = PktParse::Status::Error;
      out.error = "pkt-line length is not 4 hex digits: \"" + pkt_printable(in.substr(0, 4)) + "\"";
      return out;
    }
    len = len * 16 + static_cast<size_t>(d);
  }
  if (len < 4) {
    if (len == 3) {
      out.status = PktParse::Status::Error;
      out.error = "pkt-line length 0003 is not valid";
      return out;
    }
    out.status = PktParse::Status::Packet;
    out.kind = len == 0 ? PktKind::Flush : len == 1 ? PktKind::Delim : PktKind::ResponseEnd;
    out.size = 4;
    return out;
  }
  if (len > kPktLineMax) {
    out.status = PktParse::Status::Error;
    out.error = "pkt-line length " + std::to_string(len) + " is larger than 65520";
    return out;
  }
  if (in.size() < len) return out;  // NeedMore
  out.status = PktParse::Status::Packet;
  out.kind = PktKind::Data;
  out.payload = in.substr(4, len - 4);
  out.size = len;
  return out;
}

void PktLineReader::feed(std::string_view bytes) {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

PktParse PktLineReader::next() {
  PktParse p = parse_pkt_line(std::string_view(buf_).substr(pos_));
  if (p.status == PktParse::Status::Packet) {
    pos_ += p.size;
    consumed_ += p.size;
  }
  return p;
}

bool ReceivePackRequest::has_capability(std::string_view name) const {
  for (const auto& c : capabilities)
    if (c == name || (c.size() > name.size() && c.compare(0, name.size(), name) == 0 && c[name.size()] == '='))
      return true;
  return false;
}

std::optional<std::string> ReceivePackRequest::capability_value(std::string_view name) const {
  for (const auto& c : capabilities)
    if (c.size() > name.size() && c.compare(0, name.size(), name) == 0 && c[name.size()] == '=')
      return c.substr(name.size() + 1);
  return std::nullopt;
}

bool valid_ref_name(std::string_view ref) {
  if (ref.substr(0, 5) != "refs/" || ref.size() == 5) return false;
  if (ref == "@" || ref.back() == '/' || ref.back() == '.') return false;
  if (ref.find("..") != std::string_view::npos || ref.find("@{") != std::string_view::npos ||
      ref.find("//") != std::string_view::npos)
    return false;
  for (unsigned char c : ref)
    if (c < 0x20 || c == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' || c == '[' ||
        c == '\\')
      return false;
  size_t start = 0;
  while (start <= ref.size()) {
    size_t end = ref.find('/', start);
    if (end == std::string_view::npos) end = ref.size();
    const std::string_view comp = ref.substr(start, end - start);
    if (comp.empty() || comp.front() == '.') return false;
    if (comp.size() >= 5 && comp.substr(comp.size() - 5) == ".lock") return false;
    start = end + 1;
  }
  return true;
}

ReceivePackParser::State ReceivePackParser::fail(std::string why) {
  state_ = State::Error;
  error_ = std::move(why);
  return state_;
}

// queue_command: old-oid SP new-oid SP ref, the oids of one object format for the whole request.
bool ReceivePackParser::command(std::string_view line, std::string* why) {
  const size_t sp = line.find(' ');
  if (sp != 40 && sp != 64) {
    *why = "expected <old-oid> <new-oid> <ref>, got \"" + pkt_printable(line) + "\"";
    return false;
  }
  if (oid_len_known_ && sp != req_.oid_hex_len) {
    *why = "object ids of different lengths in one push";
    return false;
  }
  req_.oid_hex_len = sp;
  oid_len_known_ = true;
  const std::string_view old_oid = line.substr(0, sp);
  if (line.size() < 2 * sp + 3 || line[2 * sp + 1] != ' ' || !pkt_lower_hex(old_oid) ||
      !pkt_lower_hex(line.substr(sp + 1, sp))) {
    *why = "expected <old-oid> <new-oid> <ref>, got \"" + pkt_printable(line) + "\"";
    return false;
  }
  RefCommand cmd{std::string(old_oid), std::string(line.substr(sp + 1, sp)), std::string(line.substr(2 * sp + 2))};
  if (!valid_ref_name(cmd.ref)) {
    *why = "not a valid ref name: \"" + pkt_printable(cmd.ref) + "\"";
    return false;
  }
  if (cmd.is_create() && cmd.is_delete()) {
    *why = "a command with two zero object ids for " + cmd.ref;
    return false;
  }
  req_.commands.push_back(std::move(cmd));
  return true;
}

// One data packet of the command list (read_head_info's loop).
ReceivePackParser::State ReceivePackParser::command_line(std::string_view payload) {
  if (payload.substr(0, 4) == "ERR ") return fail("the request carries an ERR packet");
  if (cert_ended_) return fail("packets after push-cert-end (expected a flush)");
  const std::string_view chomped = pkt_chomp(payload);
  if (payload.size() > 8 && chomped.substr(0, 8) == "shallow ") {
    const std::string_view oid = chomped.substr(8);
    if ((oid.size() != 40 && oid.size() != 64) || !pkt_lower_hex(oid))
      return fail("expected shallow <oid>, got \"" + pkt_printable(chomped) + "\"");
    if (!req_.commands.empty()) return fail("a shallow line after the commands");
    req_.shallow.emplace_back(oid);
    return state_;
  }
  const size_t nul = chomped.find('\0');
  const std::string_view line = chomped.substr(0, nul);
  if (nul != std::string_view::npos) {
    std::string_view list = chomped.substr(nul + 1);
    list = list.substr(0, list.find('\0'));  // git reads it as a C string
    size_t start = 0;
    while (start < list.size()) {
      size_t end = list.find(' ', start);
      if (end == std::string_view::npos) end = list.size();
      if (end > start) req_.capabilities.emplace_back(list.substr(start, end - start));
      start = end + 1;
    }
    if (auto format = req_.capability_value("object-format"); format && *format != "sha1" && *format != "sha256")
      return fail("unknown object-format \"" + pkt_printable(*format) + "\"");
  }
  if (line == "push-cert") {
    if (req_.push_cert) return fail("a second push certificate");
    req_.push_cert = true;
    phase_ = Phase::Cert;
    return state_;
  }
  std::string why;
  if (!command(line, &why)) return fail(why);
  return state_;
}

// The certificate's packets up to "push-cert-end\n", kept as sent (git does not chomp them).
ReceivePackParser::State ReceivePackParser::cert_line(std::string_view payload) {
  if (payload.substr(0, 4) == "ERR ") return fail("the request carries an ERR packet");
  if (payload == "push-cert-end\n") {
    cert_ended_ = true;
    phase_ = Phase::Commands;
    return state_;
  }
  cert_.append(payload.substr(0, payload.find('\0')));
  return state_;
}

// The flush after the commands (or the certificate): queue_commands_from_cert, then the
// push options if asked for, else the pack.
ReceivePackParser::State ReceivePackParser::end_of_commands() {
  if (req_.push_cert) {
    if (!req_.commands.empty()) return fail("both a push certificate and unsigned commands");
    const size_t blank = cert_.find("\n\n");
    if (blank == std::string::npos) return fail("malformed push certificate (no blank line after its header)");
    const std::string_view body = std::string_view(cert_).substr(blank + 2);
    // The signature starts at the last line that begins like one (parse_signed_buffer).
    size_t sig = body.size();
    for (size_t at = 0; at < body.size();) {
      if (pkt_signature_start(body.substr(at))) sig = at;
      const size_t eol = body.find('\n', at);
      at = eol == std::string_view::npos ? body.size() : eol + 1;
    }
    const std::string_view commands = body.substr(0, sig);
    for (size_t at = 0; at < commands.size();) {
      size_t eol = commands.find('\n', at);
      if (eol == std::string_view::npos) eol = commands.size();
      std::string why;
      if (!command(commands.substr(at, eol - at), &why)) return fail("push certificate: " + why);
      at = eol + 1;
    }
  }
  if (auto format = req_.capability_value("object-format");
      !req_.commands.empty() &&
      (format ? *format : std::string("sha1")) != (req_.oid_hex_len == 64 ? "sha256" : "sha1"))
    return fail("object ids do not match object-format " + (format ? *format : std::string("sha1")));
  // receive-pack reads nothing more when there are no commands.
  if (!req_.commands.empty() && req_.has_capability("push-options")) {
    phase_ = Phase::Options;
    return state_;
  }
  req_.pack_offset = reader_.consumed();
  state_ = State::Done;
  return state_;
}

ReceivePackParser::State ReceivePackParser::step(const PktParse& p) {
  if (p.kind == PktKind::Delim || p.kind == PktKind::ResponseEnd)
    return fail(std::string("unexpected ") + (p.kind == PktKind::Delim ? "delim" : "response-end") +
                " packet in a push request");
  switch (phase_) {
    case Phase::Commands:
      if (p.kind == PktKind::Flush) return end_of_commands();
      return command_line(p.payload);
    case Phase::Cert:
      if (p.kind == PktKind::Flush) return fail("push certificate without push-cert-end");
      return cert_line(p.payload);
    case Phase::Options:
      if (p.kind == PktKind::Flush) {
        req_.pack_offset = reader_.consumed();
        state_ = State::Done;
        return state_;
      }
      if (p.payload.substr(0, 4) == "ERR ") return fail("the request carries an ERR packet");
      {
        const std::string_view opt = pkt_chomp(p.payload);
        req_.push_options.emplace_back(opt.substr(0, opt.find('\0')));
      }
      return state_;
  }
  return fail("unreachable");
}

ReceivePackParser::State ReceivePackParser::feed(std::string_view bytes) {
  // In slices, so a body whose pack arrives in the same read is not copied whole.
  constexpr size_t kSlice = 64 * 1024;
  while (state_ == State::NeedMore && !bytes.empty()) {
    const size_t n = std::min(bytes.size(), kSlice);
    reader_.feed(bytes.substr(0, n));
    bytes.remove_prefix(n);
    while (state_ == State::NeedMore) {
      PktParse p = reader_.next();
      if (p.status == PktParse::Status::NeedMore) break;
      if (p.status == PktParse::Status::Error) return fail(p.error);
      step(p);
      if (state_ != State::Error && reader_.consumed() > max_bytes_) return too_large();
    }
    if (state_ == State::NeedMore && reader_.consumed() + reader_.buffered() > max_bytes_) return too_large();
  }
  return state_;
}

ReceivePackParser::State ReceivePackParser::too_large() {
  return fail("the command section is larger than " + std::to_string(max_bytes_) + " bytes");
}

ReceivePackParser::State ReceivePackParser::finish() {
  if (state_ == State::NeedMore) return fail("the request body ended inside the command section");
  return state_;
}

ReceivePackParse parse_receive_pack(std::string_view body, size_t max_bytes) {
  ReceivePackParser parser(max_bytes);
  parser.feed(body);
  ReceivePackParse out;
  out.state = parser.finish();
  out.request = parser.request();
  out.error = parser.error();
  return out;
}

}  // namespace sluice::rules
