// Implementation of window_reader.hpp.
#include "storage/window_reader.hpp"

#include "storage/store.hpp"

#include <algorithm>
#include <cmath>

namespace orbitrain {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

} // namespace

StoreChunkSource::StoreChunkSource(Store& store, msg::DatasetManifest manifest, Fetch fetch)
    : store_(store), manifest_(std::move(manifest)), fetch_(std::move(fetch)) {
  for (const auto& h : manifest_.chunk_hashes) {
    auto has = store_.has_chunk(h, false);
    local_.push_back(has && *has);
  }
}

bool StoreChunkSource::local(size_t index) const {
  return local_.at(index);
}

Result<std::vector<uint8_t>> StoreChunkSource::read(size_t index) {
  const auto& h = manifest_.chunk_hashes.at(index);
  if (local_[index]) {
    auto bytes = store_.get_chunk(h);
    if (bytes || !fetch_)
      return bytes;
    // A corrupt local copy: fall back to a replica.
  }
  if (!fetch_)
    return make_error(Errc::not_found, "chunk " + std::to_string(index) + " is not held here");
  return fetch_(h);
}

WindowReader::WindowReader(const msg::DatasetManifest& manifest, ChunkSource& source,
                           double train_fraction)
    : source_(source) {
  uint64_t off = 0;
  for (auto s : manifest.chunk_sizes) {
    offsets_.push_back(off);
    off += s;
  }
  offsets_.push_back(off);
  train_end_ = static_cast<uint64_t>(std::floor(static_cast<double>(off) * train_fraction));
}

std::pair<uint64_t, uint64_t> WindowReader::range(Split split) const {
  return split == Split::train ? std::make_pair(uint64_t{0}, train_end_)
                               : std::make_pair(train_end_, offsets_.back());
}

size_t WindowReader::chunk_of(uint64_t position) const {
  auto it = std::upper_bound(offsets_.begin(), offsets_.end(), position);
  return static_cast<size_t>(it - offsets_.begin()) - 1;
}

std::vector<uint64_t> WindowReader::sample_starts(Split split, uint64_t seed, uint64_t step,
                                                  uint32_t micro_batch, uint32_t count,
                                                  uint32_t length) const {
  auto [begin, end] = range(split);
  if (end < begin + length)
    return {};
  const uint64_t last_start = end - length; // inclusive
  // The positions [begin, last_start] whose chunk is local, as intervals.
  std::vector<std::pair<uint64_t, uint64_t>> spans; // [from, to)
  uint64_t total = 0;
  for (size_t c = 0; c + 1 < offsets_.size(); ++c) {
    if (!source_.local(c))
      continue;
    uint64_t from = std::max(offsets_[c], begin);
    uint64_t to = std::min(offsets_[c + 1], last_start + 1);
    if (from < to) {
      spans.emplace_back(from, to);
      total += to - from;
    }
  }
  std::vector<uint64_t> out;
  if (total == 0)
    return out;
  uint64_t state = seed ^ (step * 0x632be59bd9b4e019ull) ^ (uint64_t{micro_batch} << 32);
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t k = splitmix64(state) % total;
    for (const auto& [from, to] : spans) {
      if (k < to - from) {
        out.push_back(from + k);
        break;
      }
      k -= to - from;
    }
  }
  return out;
}

Result<std::vector<uint8_t>> WindowReader::read(uint64_t start, uint32_t length) {
  if (start + length > offsets_.back())
    return make_error(Errc::invalid_argument, "window [" + std::to_string(start) + ", +" +
                                                  std::to_string(length) + ") is past the end");
  std::vector<uint8_t> out;
  out.reserve(length);
  uint64_t pos = start;
  while (out.size() < length) {
    size_t c = chunk_of(pos);
    auto it = cache_.find(c);
    if (it == cache_.end()) {
      auto bytes = source_.read(c);
      if (!bytes)
        return bytes.error();
      if (cache_.size() >= 4)
        cache_.erase(cache_.begin());
      it = cache_.emplace(c, std::move(*bytes)).first;
    }
    const auto& chunk = it->second;
    uint64_t in_chunk = pos - offsets_[c];
    uint64_t take = std::min<uint64_t>(length - out.size(), chunk.size() - in_chunk);
    out.insert(out.end(), chunk.begin() + static_cast<ptrdiff_t>(in_chunk),
               chunk.begin() + static_cast<ptrdiff_t>(in_chunk + take));
    pos += take;
  }
  return out;
}

} // namespace orbitrain
