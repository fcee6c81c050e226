// What a process costs: CPU seconds (utime + stime from /proc/PID/stat) and memory (VmRSS and
// the peak VmHWM from /proc/PID/status). CPU-seconds per operation are the steadiest figure on a
// shared machine, so the load generator samples the proxy's pids before and after a run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::bench {

struct ProcSample {
  bool ok = false;
  double cpu_s = 0;      // user + system, summed over the pids
  uint64_t rss_kib = 0;  // VmRSS, summed
  uint64_t hwm_kib = 0;  // VmHWM (peak RSS since the process started), summed
  std::string error;     // why ok is false: the first pid that could not be read
};

ProcSample sample_procs(const std::vector<int>& pids);

// The CPU seconds field of one /proc/PID/stat line (exposed for tests: the comm field may hold
// spaces and parentheses). Negative when the line is malformed.
double cpu_seconds_from_stat(const std::string& stat_line);

// The value in kB of FIELD ("VmRSS", "VmHWM") in a /proc/PID/status text; 0 when absent.
uint64_t status_field_kib(const std::string& status_text, const std::string& field);

// This process's own CPU seconds (getrusage), to show whether the client was the bottleneck.
double self_cpu_seconds();

}  // namespace sluice::bench
