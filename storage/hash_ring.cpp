// Implementation of hash_ring.hpp.
#include "storage/hash_ring.hpp"

#include <algorithm>

namespace orbitrain {

namespace {

uint64_t position_of(const Sha256& h) {
  uint64_t p = 0;
  for (int i = 0; i < 8; ++i)
    p = (p << 8) | h[static_cast<size_t>(i)];
  return p;
}

} // namespace

HashRing::HashRing(std::vector<std::string> satellites, unsigned vnodes)
    : satellites_(std::move(satellites)) {
  points_.reserve(satellites_.size() * vnodes);
  for (uint32_t s = 0; s < satellites_.size(); ++s)
    for (unsigned v = 0; v < vnodes; ++v) {
      std::string label = satellites_[s] + "#" + std::to_string(v);
      auto h = sha256(reinterpret_cast<const uint8_t*>(label.data()), label.size());
      points_.push_back(Point{position_of(h), s});
    }
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.position != b.position ? a.position < b.position : a.satellite < b.satellite;
  });
}

std::vector<std::string>
HashRing::owners(const Sha256& key, unsigned replicas,
                 const std::function<bool(const std::string&)>& eligible) const {
  std::vector<std::string> out;
  if (points_.empty())
    return out;
  const uint64_t pos = position_of(key);
  auto it = std::lower_bound(points_.begin(), points_.end(), pos,
                             [](const Point& p, uint64_t v) { return p.position < v; });
  size_t start = static_cast<size_t>(it - points_.begin());
  std::vector<bool> taken(satellites_.size(), false);
  for (size_t k = 0; k < points_.size() && out.size() < replicas; ++k) {
    const Point& p = points_[(start + k) % points_.size()];
    if (taken[p.satellite])
      continue;
    taken[p.satellite] = true;
    const std::string& id = satellites_[p.satellite];
    if (!eligible || eligible(id))
      out.push_back(id);
  }
  return out;
}

} // namespace orbitrain
