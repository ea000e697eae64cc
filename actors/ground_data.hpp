// The ground station's data path: datasets go up in chunks, come back down
// verified, are listed and repaired. Each function connects to every
// satellite's store actor (remotely spawned, concurrently, with a timeout),
// works with the ones that answer and reports the others.
//
//   ingest  cut FILE into chunks, key each by SHA-256, send it to its R owners
//           on the hash ring (skipping satellites that are down for the next
//           owners), asking first which copies exist, so a repeated or
//           interrupted ingest sends only what is missing; at most `window`
//           chunks in flight and one batch in memory; the manifest is written
//           to every satellite only after every chunk is stored.
//   cat     reassemble a dataset from whichever replicas answer, checking
//           every chunk and the whole-file hash.
//   survey  manifests and inventories of every satellite: what `datasets` shows.
//   repair  verify every copy (dropping corrupt ones) and restore R copies of
//           every chunk on the satellites that are up.
//
// With a ground link (a file with [orbit] and a ground station in use, see
// GroundStation) every envelope to a satellite waits until the station has
// a route to it and then for the route's delay, and every reply is held the
// same way; a satellite the station cannot reach within the timeout counts
// as down ("out of contact"). The remote spawning of the store actors is not
// held (as for `train`).
#pragma once

#include "actors/ground.hpp"
#include "core/result.hpp"
#include "schemas/messages.hpp"

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace orbitrain {

/// Called as work advances: bytes done of total.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

inline constexpr size_t min_chunk_size = size_t{4} << 10;
inline constexpr size_t max_chunk_size = size_t{32} << 20;

struct IngestOptions {
  std::string file;
  std::string dataset;
  size_t chunk_size = size_t{1} << 20;
  unsigned replicas = 0;     // 0: the constellation's storage.replicas
  unsigned min_replicas = 0; // 0: same as replicas
  bool overwrite = false;
  std::chrono::milliseconds timeout{10000};
  unsigned window = 4; // chunks in flight to each satellite
};

struct IngestReport {
  uint64_t bytes = 0; // dataset size
  uint64_t chunks = 0;
  uint64_t copies_sent = 0;    // chunk copies transferred
  uint64_t bytes_sent = 0;     // their bytes
  uint64_t copies_present = 0; // copies the satellites already held
  unsigned replicas = 0;
  bool was_complete = false;     // the same dataset was already fully ingested
  std::vector<std::string> down; // "sat-3: why"
  double seconds = 0;
};

Result<IngestReport> ingest(GroundStation& ground, const IngestOptions& options,
                            const ProgressFn& progress = nullptr);

struct CatReport {
  uint64_t bytes = 0;
  uint64_t fallbacks = 0; // chunks read from a later replica after a failure
  std::vector<std::string> down;
};

/// Writes dataset `name` to `out`. Fails if a chunk has no valid copy on any
/// reachable satellite or the whole-file hash differs.
Result<CatReport> cat_dataset(GroundStation& ground, const std::string& name, std::FILE* out,
                              std::chrono::milliseconds timeout,
                              const ProgressFn& progress = nullptr);

struct SatelliteHoldings {
  std::string id;
  bool up = false;
  std::string error;
  std::map<std::string, msg::DatasetManifest> manifests;
  std::map<msg::Hash, uint64_t> chunks; // hash -> size
};

struct DatasetSummary {
  msg::DatasetManifest manifest;
  std::vector<std::string> held_by; // satellites holding its manifest
  std::vector<unsigned> copies;     // per chunk: copies on reachable satellites
  unsigned min_copies = 0;
  uint64_t under_replicated = 0; // chunks with fewer than manifest.replicas copies
  std::map<std::string, std::pair<uint64_t, uint64_t>> per_satellite; // id -> (chunks, bytes)
};

struct Survey {
  std::vector<SatelliteHoldings> satellites;
  std::vector<DatasetSummary> datasets;
};

Survey survey(GroundStation& ground, std::chrono::milliseconds timeout);

struct RepairReport {
  uint64_t chunks_checked = 0;
  uint64_t copies_restored = 0;
  uint64_t bytes_sent = 0;
  uint64_t corrupt_dropped = 0;
  uint64_t manifests_restored = 0;
  uint64_t lost_chunks = 0; // no valid copy anywhere reachable
  std::vector<std::string> down;
};

/// Repairs dataset `name` (all datasets when empty).
Result<RepairReport> repair(GroundStation& ground, const std::string& name,
                            std::chrono::milliseconds timeout,
                            const ProgressFn& progress = nullptr);

} // namespace orbitrain
