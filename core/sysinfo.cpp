// Implementation of sysinfo.hpp from /proc/loadavg, /proc/meminfo and
// /proc/self/{status,stat}.
#include "core/sysinfo.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

namespace orbitrain {

namespace {

uint64_t kib_field(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) == 0) {
      std::istringstream fields(line.substr(key.size()));
      uint64_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

} // namespace

HostSample sample_host() {
  HostSample s;
  {
    std::ifstream in("/proc/loadavg");
    in >> s.load1;
  }
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  s.cpu_count = n > 0 ? static_cast<uint32_t>(n) : 0;
  s.mem_total = kib_field("/proc/meminfo", "MemTotal:");
  s.mem_available = kib_field("/proc/meminfo", "MemAvailable:");
  s.process_rss = kib_field("/proc/self/status", "VmRSS:");
  {
    // Fields 14 and 15 of /proc/self/stat are utime and stime in clock ticks;
    // field 2 (comm) may hold spaces, so parse after its closing ')'.
    std::ifstream in("/proc/self/stat");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = all.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(all.substr(close + 2));
      std::string field;
      unsigned long long utime = 0, stime = 0;
      for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14)
          utime = std::stoull(field);
        if (i == 15)
          stime = std::stoull(field);
      }
      long ticks = ::sysconf(_SC_CLK_TCK);
      if (ticks > 0)
        s.process_cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
    }
  }
  return s;
}

} // namespace orbitrain
