#include "rules/gateway_credential.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include <algorithm>

#include "rules/credentials.hpp"

namespace sluice::rules {

namespace {
constexpr std::string_view kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

// Uniform random alphanumerics from the kernel's generator (rejection sampling: no bias).
std::string random_alnum(size_t n) {
  std::string out;
  unsigned char buf[64];
  while (out.size() < n) {
    ssize_t got = ::getrandom(buf, sizeof buf, 0);
    if (got <= 0) continue;
    for (ssize_t i = 0; i < got && out.size() < n; ++i)
      if (buf[i] < 248) out += kAlnum[buf[i] % kAlnum.size()];  // 248 = 4 * 62
  }
  return out;
}
}  // namespace

Result<std::pair<std::string, std::string>> parse_inject_template(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return Err{"inject must be 'Header-Name: value with {secret}' or replace"};
  std::string name(text.substr(0, colon));
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      return Err{"inject header name '" + name + "' is not a header name"};
  std::string_view value = text.substr(colon + 1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (value.find("{secret}") == std::string_view::npos)
    return Err{"inject value must contain {secret} (or {basic:USER:{secret}})"};
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7f) return Err{"inject value has a control character"};
  // Every '{' must open a known placeholder.
  for (size_t i = value.find('{'); i != std::string_view::npos; i = value.find('{', i + 1)) {
    std::string_view rest = value.substr(i);
    if (rest.rfind("{secret}", 0) == 0) continue;
    if (rest.rfind("{basic:", 0) == 0 && rest.find(":{secret}}") != std::string_view::npos) {
      i += rest.find(":{secret}}") + 9;
      continue;
    }
    return Err{"inject value has an unknown placeholder at '" + std::string(rest.substr(0, 12)) + "'"};
  }
  return std::pair{name, std::string(value)};
}

std::string render_inject(const std::string& tmpl, const std::string& secret) {
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl.compare(i, 8, "{secret}") == 0) {
      out += secret;
      i += 8;
      continue;
    }
    if (tmpl.compare(i, 7, "{basic:") == 0) {
      const size_t end = tmpl.find(":{secret}}", i + 7);
      if (end != std::string::npos) {
        out += base64_encode(tmpl.substr(i + 7, end - i - 7) + ":" + secret);
        i = end + 10;
        continue;
      }
    }
    out += tmpl[i++];
  }
  return out;
}

std::string make_stand_in(std::string_view secret) {
  size_t prefix_len = 0;
  for (size_t i = 0; i < secret.size() && i < 16; ++i)
    if (secret[i] == '_' || secret[i] == '-') prefix_len = i + 1;
  std::string out(secret.substr(0, prefix_len));
  const size_t random_len = std::max<size_t>(24, secret.size() > prefix_len ? secret.size() - prefix_len : 0);
  return out + random_alnum(random_len);
}

bool stand_in_keeps_length(std::string_view secret) {
  size_t prefix_len = 0;
  for (size_t i = 0; i < secret.size() && i < 16; ++i)
    if (secret[i] == '_' || secret[i] == '-') prefix_len = i + 1;
  return secret.size() >= prefix_len + 24;
}

const std::vector<std::string>& default_secret_env_names() {
  static const std::vector<std::string> names = {"GITHUB_TOKEN",
                                                 "GH_TOKEN",
                                                 "GITLAB_TOKEN",
                                                 "GL_TOKEN",
                                                 "BITBUCKET_TOKEN",
                                                 "AWS_ACCESS_KEY_ID",
                                                 "AWS_SECRET_ACCESS_KEY",
                                                 "AWS_SESSION_TOKEN",
                                                 "ANTHROPIC_API_KEY",
                                                 "OPENAI_API_KEY",
                                                 "GOOGLE_API_KEY",
                                                 "GEMINI_API_KEY",
                                                 "HF_TOKEN",
                                                 "NPM_TOKEN",
                                                 "NODE_AUTH_TOKEN",
                                                 "PYPI_TOKEN",
                                                 "TWINE_PASSWORD",
                                                 "CARGO_REGISTRY_TOKEN",
                                                 "DOCKER_PASSWORD",
                                                 "SLACK_TOKEN",
                                                 "SLACK_BOT_TOKEN",
                                                 "STRIPE_API_KEY",
                                                 "DATABASE_URL"};
  return names;
}

Result<std::string> run_secret_command(const std::vector<std::string>& argv) {
  const std::string shown = "command " + argv.front();
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Err{shown + ": pipe: " + std::strerror(errno)};
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return Err{shown + ": fork: " + std::strerror(errno)};
  }
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(out[1], 1);
    ::dup2(null, 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  bool too_big = false, timed_out = false;
  struct timespec start {};
  ::clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    struct timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const long elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (elapsed_ms >= 10000) {
      timed_out = true;
      break;
    }
    struct pollfd p {
      out[0], POLLIN, 0
    };
    if (::poll(&p, 1, static_cast<int>(10000 - elapsed_ms)) < 0 && errno != EINTR) break;
    char buf[4096];
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > 65536) {
      too_big = true;
      break;
    }
  }
  ::close(out[0]);
  if (timed_out || too_big) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // The output is the secret: no error below quotes it.
  if (timed_out) return Err{shown + " did not finish within 10 s"};
  if (too_big) return Err{shown + " printed more than 64 KiB"};
  if (WIFSIGNALED(status)) return Err{shown + " was killed by signal " + std::to_string(WTERMSIG(status))};
  if (WEXITSTATUS(status) == 127) return Err{shown + " could not be run (not found?)"};
  if (WEXITSTATUS(status) != 0) return Err{shown + " exited with status " + std::to_string(WEXITSTATUS(status))};
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return Err{shown + " printed nothing"};
  if (text.find('\n') != std::string::npos) return Err{shown + " printed more than one line"};
  return text;
}

std::vector<StandIn> stand_ins_for(const std::vector<std::pair<std::string, std::string>>& issued,
                                   const std::vector<std::shared_ptr<const GatewayCredential>>& credentials) {
  std::vector<StandIn> out;
  for (const auto& [name, value] : issued)
    for (const auto& c : credentials)
      if (c->name == name) out.push_back(StandIn{value, c.get()});
  return out;
}

const StandIn* find_stand_in(std::string_view text, const std::vector<StandIn>& stand_ins) {
  for (const auto& s : stand_ins)
    if (!s.value.empty() && text.find(s.value) != std::string_view::npos) return &s;
  return nullptr;
}

std::vector<std::string> basic_payloads_in(std::string_view bytes) {
  std::vector<std::string> out;
  std::string lower(bytes);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t at = lower.find("basic"); at != std::string::npos; at = lower.find("basic", at + 5)) {
    size_t start = at + 5;
    if (start >= bytes.size() || (bytes[start] != ' ' && bytes[start] != '\t')) continue;
    while (start < bytes.size() && (bytes[start] == ' ' || bytes[start] == '\t')) ++start;
    size_t end = start;
    while (end < bytes.size() && bytes[end] != ' ' && bytes[end] != '\t' && bytes[end] != '\r' && bytes[end] != '\n')
      ++end;
    if (auto decoded = base64_decode(bytes.substr(start, end - start))) out.push_back(std::move(*decoded));
  }
  return out;
}

const StandIn* find_stand_in_header(std::string_view value, const std::vector<StandIn>& stand_ins) {
  if (const StandIn* s = find_stand_in(value, stand_ins)) return s;
  if (auto decoded = basic_payload(value)) return find_stand_in(*decoded, stand_ins);
  return nullptr;
}

const StandIn* find_stand_in_bytes(std::string_view bytes, const std::vector<StandIn>& stand_ins) {
  if (const StandIn* s = find_stand_in(bytes, stand_ins)) return s;
  for (const auto& decoded : basic_payloads_in(bytes))
    if (const StandIn* s = find_stand_in(decoded, stand_ins)) return s;
  return nullptr;
}

std::string replace_stand_in(std::string value, const std::string& stand_in, const std::string& secret) {
  if (stand_in.empty()) return value;
  auto swap_all = [&](std::string& text) {
    for (size_t at = text.find(stand_in); at != std::string::npos; at = text.find(stand_in, at + secret.size()))
      text.replace(at, stand_in.size(), secret);
  };
  if (auto decoded = basic_payload(value); decoded && decoded->find(stand_in) != std::string::npos) {
    swap_all(*decoded);
    return "Basic " + base64_encode(*decoded);
  }
  swap_all(value);
  return value;
}

}  // namespace sluice::rules
