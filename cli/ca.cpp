// sluice ca init DIR: a new inspection CA for TLS inspection (issue 14), written once.
// The key never leaves DIR/ca.key (0600, never overwritten); the cert is what clients trust.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "tls/ca.hpp"

namespace sluice::cli {
namespace {

int ca_fail(const std::string& message, int code) {
  std::fprintf(stderr, "sluice ca: %s\n", message.c_str());
  return code;
}

int ca_main(const Args& a) {
  const auto& words = a.positional;
  if (words.empty() || words[0] != "init")
    return ca_fail("the only action is 'init': sluice ca init DIR (see sluice ca --help)", 2);
  if (words.size() != 2) return ca_fail("init takes one directory: sluice ca init DIR", 2);
  const std::string dir = words[1];
  // Missing directories are made private (0700), parents too; an existing one is used as it
  // is (the key file is 0600 anyway).
  for (size_t at = dir.find('/', 1);; at = dir.find('/', at + 1)) {
    const std::string part = dir.substr(0, at);
    if (!part.empty() && ::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return ca_fail("cannot create " + part + ": " + std::strerror(errno), 1);
    if (at == std::string::npos) break;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return ca_fail(dir + " is not a directory", 1);
  auto made = tls::create_ca();
  if (!made.ca) return ca_fail("cannot create the CA: " + made.error, 1);
  if (auto err = tls::write_ca(*made.ca, dir); !err.empty()) return ca_fail(err, 1);
  std::printf("wrote %s/ca.crt (the certificate clients trust) and %s/ca.key (its key, mode 0600)\n", dir.c_str(),
              dir.c_str());
  return 0;
}

}  // namespace

Subcommand ca_command(CLI::App& root) {
  auto c = std::make_shared<Command>(root, "ca", "create the CA that TLS inspection signs its leaf certificates with");
  c->description(
       "sluice ca init DIR writes a new CA into DIR (made 0700, with its parents, if missing):\n"
       "DIR/ca.crt, the certificate clients must trust, and DIR/ca.key, its\n"
       "ECDSA P-256 key, mode 0600. Existing files are never overwritten.\n"
       "The subject is \"sluice inspection CA\" plus a random suffix, so two\n"
       "installations' CAs are told apart.")
      .positionals("init DIR", "the action (init) and the directory to write to")
      .footer("Exit status: 0 written, 1 could not write (existing files are left as they were), 2 usage.");
  return {c, ca_main};
}

}  // namespace sluice::cli
