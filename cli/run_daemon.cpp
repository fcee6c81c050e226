#include "cli/run_daemon.hpp"

#include <sys/socket.h>

#include <chrono>
#include <cstdio>

#include "rules/json.hpp"

namespace sluice::cli {

std::string denial_line(const std::string& event_json, const std::string& listener) {
  auto parsed = rules::Json::parse(event_json);
  if (!parsed || !parsed->is_object()) return "";
  const rules::Json& e = parsed.value();
  auto text = [&](const char* k) {
    const rules::Json* v = e.find(k);
    return v == nullptr ? std::string() : v->is_string() ? v->as_string() : v->dump();
  };
  if (text("event") != "decision" || text("listener") != listener) return "";
  // The denials the embedded proxy prints: a 403, a SOCKS "not allowed", an in-band ssh reason.
  bool denied = text("status") == "403" || text("socks_reply") == "2" || text("in_band_reason") == "true";
  if (!denied) return "";
  std::string host = text("host").empty() ? "?" : text("host");
  std::string target = text("port").empty() ? host : host + ":" + text("port");
  std::string reason = text("error").empty() ? text("reason") : text("error");
  std::string rule = text("rule");
  std::string line = "sluice: denied " + target + " (" + reason;
  if (!rule.empty() && rule != "default") line += ", rule \"" + rule + "\"";
  if (text("kind") == "socks") line += ", socks";
  return line + ")";
}

DenialWatcher::DenialWatcher(std::string socket, std::string listener)
    : client_(std::move(socket)), listener_(std::move(listener)) {}

DenialWatcher::~DenialWatcher() { stop(); }

std::string DenialWatcher::start() {
  if (std::string err = client_.connect(); !err.empty()) return err;
  thread_ = std::thread([this] {
    const std::string removed = "\"event\":\"sandbox\",\"action\":\"removed\",\"name\":\"" + listener_ + "\"";
    client_.stream("/v1/events", [this, removed](const std::string& line) {
      if (line.find(removed) != std::string::npos) {
        std::lock_guard lock(mu_);
        removed_ = true;
        cv_.notify_all();
        return false;
      }
      std::string out = denial_line(line, listener_);
      if (!out.empty()) {
        std::fprintf(stderr, "%s\n", out.c_str());
        std::fflush(stderr);
      }
      return true;
    });
  });
  return "";
}

void DenialWatcher::stop() {
  if (!thread_.joinable()) return;
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(2), [&] { return removed_; });
  }
  ::shutdown(client_.fd(), SHUT_RDWR);  // the stream's recv returns; the thread ends
  thread_.join();
}

}  // namespace sluice::cli
