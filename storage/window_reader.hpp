// Training windows from a dataset's chunks, for a worker on a satellite.
//
// The dataset is split by byte position as in the single-process trainer:
// the first 90% is the train split, the rest validation. A window is
// `length` consecutive bytes (block_size + 1 tokens). sample_starts() draws
// window starts deterministically from (seed, step, micro_batch), uniformly
// over the positions of the split whose first byte lies in a chunk this
// satellite holds, so a worker trains on its own data. read() returns the
// window's bytes; a window that runs past its chunk continues in the next
// chunk, read locally if held, else through the source's remote fetch.
#pragma once

#include "core/result.hpp"
#include "schemas/messages.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

namespace orbitrain {

class Store;

/// Where a reader gets chunk bytes from.
class ChunkSource {
public:
  virtual ~ChunkSource() = default;
  /// Whether chunk `index` is held on this satellite.
  virtual bool local(size_t index) const = 0;
  /// The verified bytes of chunk `index` (local or fetched).
  virtual Result<std::vector<uint8_t>> read(size_t index) = 0;
};

/// A satellite's own store, with `fetch` for chunks it does not hold.
class StoreChunkSource : public ChunkSource {
public:
  using Fetch = std::function<Result<std::vector<uint8_t>>(const msg::Hash&)>;
  /// `store` must outlive this source.
  StoreChunkSource(Store& store, msg::DatasetManifest manifest, Fetch fetch);
  bool local(size_t index) const override;
  Result<std::vector<uint8_t>> read(size_t index) override;

private:
  Store& store_;
  msg::DatasetManifest manifest_;
  Fetch fetch_;
  std::vector<bool> local_;
};

enum class Split { train, val };

class WindowReader {
public:
  /// `source` must outlive the reader.
  WindowReader(const msg::DatasetManifest& manifest, ChunkSource& source,
               double train_fraction = 0.9);

  /// [begin, end) byte range of a split.
  std::pair<uint64_t, uint64_t> range(Split split) const;

  /// `count` window starts of `length` bytes, the same for the same
  /// arguments on every run; empty if this satellite holds no position.
  std::vector<uint64_t> sample_starts(Split split, uint64_t seed, uint64_t step,
                                      uint32_t micro_batch, uint32_t count, uint32_t length) const;

  /// Bytes [start, start + length) of the dataset.
  Result<std::vector<uint8_t>> read(uint64_t start, uint32_t length);

private:
  size_t chunk_of(uint64_t position) const;

  std::vector<uint64_t> offsets_; // start of each chunk, plus the total at the end
  ChunkSource& source_;
  uint64_t train_end_;
  std::map<size_t, std::vector<uint8_t>> cache_; // a few recent chunks
};

} // namespace orbitrain
