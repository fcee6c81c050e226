// `sluice bench sandboxes`: many sandboxes on one running `sluice serve --control`.
//   1. requests through one sandbox's listener: the judged-request latency with one listener
//   2. create N sandboxes through the control API (POST /v1/sandboxes, each with its own
//      small overlay: the one entry that allows the target, one deny entry of its own);
//      the time, and the serve process's RSS growth per sandbox
//   3. the same requests spread over a sample of the N listeners: the latency with N
//   4. a policy push (one config replace: PUT of the policy's allow list) while keep-alive
//      connections on sampled listeners keep sending requests; requests that fail are drops
//   5. remove every sandbox but the first (timed), the one-listener latency again (so the
//      N-listener figure is compared with one-listener figures on either side of it, which a
//      shared machine's drift moves alike), remove the first; the RSS after
// Loopback and unix sockets only; every step is bounded in count and time.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sluice::bench {

// One control API call: (method, path, body) -> (status, body); status 0 on a transport error.
struct ControlReply {
  int status = 0;
  std::string body;
};
using ControlCall = std::function<ControlReply(const std::string&, const std::string&, const std::string&)>;

struct SandboxOptions {
  int sandboxes = 1000;     // at most 20000
  std::string policy;       // the base policy; its allow list is replaced in step 4
  std::string target_host;  // loopback upstream (`sluice bench upstream`)
  uint16_t target_port = 0;
  int pid = 0;                 // the serve process (RSS)
  int requests = 2000;         // per latency measurement, sequential, one connection each
  int sample = 100;            // listeners the latency and replace steps use
  int push_connections = 32;   // keep-alive connections kept busy across the config replace
  int push_entries = 1000;     // entries in the pushed allow list
  std::string prefix = "bsb";  // sandbox names: PREFIX-0 ... PREFIX-(N-1)
  double max_seconds = 120;    // per step
};

struct LatencyStats {
  uint64_t ok = 0, failed = 0;
  double p50_us = 0, p99_us = 0, mean_us = 0;
};

struct SandboxResult {
  std::string error;  // set when a step could not run
  double create_s = 0, remove_s = 0;
  int created = 0, create_failed = 0, removed = 0;
  uint64_t rss_before_kib = 0, rss_after_create_kib = 0, rss_after_remove_kib = 0;
  double rss_per_sandbox_kib = 0;
  LatencyStats one, many;  // with one listener; spread over the sample of N
  LatencyStats one_after;  // with one listener again, once the others are removed
  double push_ms = 0;      // the PUT's own time
  int push_status = 0;
  uint64_t push_requests = 0, push_dropped = 0;  // requests across the replace; failed ones
  std::string first_failure;
};

SandboxResult run_sandboxes(const SandboxOptions& o, const ControlCall& control);
std::string render_sandboxes_text(const SandboxOptions& o, const SandboxResult& r);
std::string render_sandboxes_json(const SandboxOptions& o, const SandboxResult& r);

}  // namespace sluice::bench
