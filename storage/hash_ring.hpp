// Placement of chunks on satellites: a consistent-hash ring with virtual
// nodes. Each satellite owns `vnodes` points on a 64-bit ring (from SHA-256 of
// "<id>#<i>"); a chunk's owners are the first R distinct satellites clockwise
// from its key. Adding or removing one of N satellites moves about 1/N of the
// chunks. Owners can be filtered (e.g. to satellites that are up): the walk
// then continues to the next eligible satellite, as ingest does when one is
// down.
#pragma once

#include "storage/sha256.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace orbitrain {

class HashRing {
public:
  explicit HashRing(std::vector<std::string> satellites, unsigned vnodes = 160);

  /// Up to `replicas` distinct satellites for `key`, in ring order, skipping
  /// those `eligible` rejects.
  std::vector<std::string>
  owners(const Sha256& key, unsigned replicas,
         const std::function<bool(const std::string&)>& eligible = nullptr) const;

  const std::vector<std::string>& satellites() const { return satellites_; }

private:
  struct Point {
    uint64_t position;
    uint32_t satellite;
  };
  std::vector<std::string> satellites_;
  std::vector<Point> points_; // sorted by position
};

} // namespace orbitrain
