#include "bench/procstat.hpp"

#include <fstream>
#include <sstream>

#include <sys/resource.h>
#include <unistd.h>

namespace sluice::bench {

namespace {

bool read_file(const std::string& path, std::string& out) {
  std::ifstream f(path);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

}  // namespace

double cpu_seconds_from_stat(const std::string& line) {
  // "pid (comm) state ppid ..." : comm may contain anything, so count fields after the last ')'.
  size_t rp = line.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream in(line.substr(rp + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields after comm start at 3 (state); utime is field 14, stime 15.
  for (int i = 3; i <= 15; ++i) {
    if (!(in >> field)) return -1;
    if (i == 14 || i == 15) {
      try {
        (i == 14 ? utime : stime) = std::stoull(field);
      } catch (...) {
        return -1;
      }
    }
  }
  long ticks = sysconf(_SC_CLK_TCK);
  if (ticks <= 0) ticks = 100;
  return static_cast<double>(utime + stime) / static_cast<double>(ticks);
}

uint64_t status_field_kib(const std::string& text, const std::string& field) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    try {
      return std::stoull(line.substr(field.size() + 1));
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

ProcSample sample_procs(const std::vector<int>& pids) {
  ProcSample s;
  s.ok = !pids.empty();
  for (int pid : pids) {
    std::string stat, status;
    std::string base = "/proc/" + std::to_string(pid);
    double cpu = read_file(base + "/stat", stat) ? cpu_seconds_from_stat(stat) : -1;
    if (cpu < 0 || !read_file(base + "/status", status)) {
      s.ok = false;
      if (s.error.empty()) s.error = "cannot read " + base + "/stat or /status";
      continue;
    }
    s.cpu_s += cpu;
    s.rss_kib += status_field_kib(status, "VmRSS");
    s.hwm_kib += status_field_kib(status, "VmHWM");
  }
  return s;
}

double self_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

}  // namespace sluice::bench
