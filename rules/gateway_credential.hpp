// The credential gateway's policy part (docs/credentials.md): a credential the jail never
// holds. The jail gets a random stand-in; on a request to one of the credential's hosts inside
// inspected TLS, sluice drops the client's own credentials and attaches the real secret. A
// stand-in seen anywhere else is misuse: the request is refused (credential-misuse).
#pragma once
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rules/host_set.hpp"
#include "rules/result.hpp"

namespace sluice::rules {

inline constexpr size_t kDefaultReplaceBodyMax = 1024 * 1024;
inline constexpr size_t kMaxReplaceBodyMax = 256 * 1024 * 1024;

struct GatewayCredential {
  std::string name;
  HostSet hosts;                 // where the secret may go
  std::string secret;            // read outside the jail at load time; never logged
  std::string secret_env;        // {env: VAR}: that variable, which `sluice run` keeps out of the jail
  std::vector<std::string> env;  // variables the jail gets the stand-in under
  // How the secret goes on the request: a header built from a template, or `replace`:
  // every occurrence of the stand-in in the request's header values becomes the secret.
  bool replace = false;
  // `replace_body: true` (with `replace`): request bodies to the hosts get the same swap, streamed;
  // a body over `replace_body_max_bytes` is refused (413 credential-body-refused), never sent
  // unreplaced. The stand-in keeps the secret's length, so the body's length does not change.
  bool replace_body = false;
  size_t replace_body_max_bytes = kDefaultReplaceBodyMax;
  std::string header_name;      // template mode: "Authorization"
  std::string header_template;  // "Bearer {secret}", "Basic {basic:x-access-token:{secret}}"
};

// Parses "Name: value-template"; the value may hold {secret} and {basic:USER:{secret}} (the
// base64 of USER:secret, for HTTP Basic). An error names what is wrong.
Result<std::pair<std::string, std::string>> parse_inject_template(std::string_view text);
// The header value for `secret` (never logged).
std::string render_inject(const std::string& value_template, const std::string& secret);

// A random stand-in shaped like `secret`: the same known prefix ("ghp_", "github_pat_",
// "sk-ant-api03-": the text up to the last '_' or '-' among its first 16 bytes) and length,
// the rest random [A-Za-z0-9], at least 24 random characters (about 140 bits).
std::string make_stand_in(std::string_view secret);
// Whether make_stand_in(secret) is as long as `secret` (at least 24 characters after its prefix),
// which `replace_body` needs.
bool stand_in_keeps_length(std::string_view secret);

// The variables `sluice run` removes from CMD's environment (unless a credential gives their
// stand-in): the common token names, so a real secret in the launcher's environment never
// reaches the jail.
const std::vector<std::string>& default_secret_env_names();

// Runs ARGV (no shell) with stdin and stderr on /dev/null and returns its standard output,
// final newlines dropped: a secret source `{command: [...]}`. Fails closed: an exit status
// other than 0, a signal, no output, more than one line, more than 64 KiB, or 10 s without
// finishing is an error (whose text never holds the output).
Result<std::string> run_secret_command(const std::vector<std::string>& argv);

// A stand-in and the credential it stands for.
struct StandIn {
  std::string value;
  const GatewayCredential* credential = nullptr;
};

// The stand-ins a sandbox was issued (`issued`: credential name -> stand-in), each with its
// credential from `credentials`; names without a credential are left out.
std::vector<StandIn> stand_ins_for(const std::vector<std::pair<std::string, std::string>>& issued,
                                   const std::vector<std::shared_ptr<const GatewayCredential>>& credentials);

// The first stand-in that occurs in `text`, or null.
const StandIn* find_stand_in(std::string_view text, const std::vector<StandIn>& stand_ins);
// The same for a header value, which may also hold it inside HTTP Basic credentials
// ("Basic " + base64(user:password), as git and curl send a password): decoded and searched.
const StandIn* find_stand_in_header(std::string_view value, const std::vector<StandIn>& stand_ins);
// The same for raw bytes (a tunnel's first bytes): the stand-in as written, or inside any
// "Basic BASE64" credentials among them (a plain-HTTP request carried in the tunnel).
const StandIn* find_stand_in_bytes(std::string_view bytes, const std::vector<StandIn>& stand_ins);
// The decoded payloads of every "Basic BASE64" among raw bytes (a request head).
std::vector<std::string> basic_payloads_in(std::string_view bytes);
// `replace`: the header value with every occurrence of `stand_in` swapped for `secret`, inside
// Basic credentials too (decoded, swapped, encoded again).
std::string replace_stand_in(std::string value, const std::string& stand_in, const std::string& secret);

}  // namespace sluice::rules
