// What a satellite reports about its host and itself: CPU load, memory,
// process RSS and CPU time, read from /proc. Used by status probes now and by
// the workers' load reports later.
#pragma once

#include <cstdint>

namespace orbitrain {

struct HostSample {
  double load1 = 0;               // 1-minute load average of the host
  uint32_t cpu_count = 0;         // online CPUs
  uint64_t mem_total = 0;         // bytes
  uint64_t mem_available = 0;     // bytes
  uint64_t process_rss = 0;       // bytes, this process
  double process_cpu_seconds = 0; // user + system CPU time of this process
};

/// Reads the current values; fields that cannot be read stay 0.
HostSample sample_host();

} // namespace orbitrain
