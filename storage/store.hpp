// A satellite's store: one RocksDB database (created on first open) with
// column families for data chunks, their index, dataset manifests,
// checkpoints and metadata. rocksdb::Status stays inside storage/: callers
// get Result/Status values of the project (core/result.hpp).
//
// Chunks are keyed by the SHA-256 of their bytes and checked on every read:
// a chunk whose bytes no longer match its key is reported as Errc::corrupt
// and never returned as data. A put whose bytes do not match the key is
// refused the same way, so a half-received chunk is never stored as valid.
//
// Checkpoints are written atomically: all parts of a new checkpoint, the
// pointer to it and the removal of the previous one go in one synced
// WriteBatch. A reader sees the whole previous checkpoint or the whole new
// one, also after a crash in the middle of a write (RocksDB's WAL replays
// only complete batches); the pointer carries the checkpoint's SHA-256 too.
//
// A Store is safe to use from several threads.
#pragma once

#include "core/result.hpp"
#include "schemas/messages.hpp"
#include "storage/sha256.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace orbitrain {

struct ChunkInfo {
  Sha256 hash{};
  uint64_t size = 0;
};

struct Checkpoint {
  uint64_t step = 0;
  std::vector<uint8_t> state; // opaque to the store: the trainer's serialized state
};

class Store {
public:
  /// Opens (creating if needed) the database in directory `dir`.
  static Result<std::unique_ptr<Store>> open(const std::string& dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& dir() const { return dir_; }

  // -- chunks --
  /// How put_chunk() makes sure `key` names `data`.
  enum class KeyCheck {
    sha256, ///< hash the bytes; refuse them if they do not match
    /// the caller vouches for the key: a chunk received from the station
    /// or satellite that hashed it, its bytes checked on arrival against
    /// the CRC32C its sender wrote (the codec does). The bytes are still
    /// hashed on every read, so a copy stored under a wrong key is reported
    /// as corrupt and never served.
    vouched,
  };
  /// Stores `data` under `key`; true if written, false if a valid copy was
  /// already held. Errc::corrupt if sha256(data) != key (nothing written;
  /// not checked with KeyCheck::vouched).
  /// Readable at once; durable (survives a crash of the process) only after
  /// the next commit_chunks() or put_manifest(), or a clean close.
  Result<bool> put_chunk(const Sha256& key, const uint8_t* data, size_t size,
                         KeyCheck check = KeyCheck::sha256);
  /// Makes every chunk put so far durable (flushes them to their files).
  Status commit_chunks();
  /// Returns once RocksDB has no flush or compaction running or pending
  /// (benchmarks: so that a timed phase does not share the CPU with the
  /// background work of the one before).
  void wait_until_idle();
  /// The chunk's bytes, verified. Errc::not_found or Errc::corrupt.
  Result<std::vector<uint8_t>> get_chunk(const Sha256& key);
  /// Calls `use` with the chunk's bytes, verified, where RocksDB read them
  /// (no copy; valid during the call only). Errc::not_found or Errc::corrupt,
  /// and then `use` is not called.
  Status read_chunk(const Sha256& key, const std::function<void(const uint8_t*, size_t)>& use);
  /// Whether the chunk is held. With `verify`, reads and checks it, and
  /// drops a corrupt copy (then answers false and sets *dropped_corrupt).
  Result<bool> has_chunk(const Sha256& key, bool verify, bool* dropped_corrupt = nullptr);
  Status delete_chunk(const Sha256& key);
  /// Every chunk held, from the index (no chunk data is read).
  Result<std::vector<ChunkInfo>> list_chunks();
  /// Test and repair hooks: the stored bytes, unchecked; overwrite them.
  Result<std::vector<uint8_t>> raw_chunk(const Sha256& key);
  /// A plain RocksDB read with RocksDB's default options (its own checksums
  /// verified, the SHA-256 not): bench/data_bench's baseline.
  Status raw_read_chunk(const Sha256& key, const std::function<void(const uint8_t*, size_t)>& use);
  Status raw_put_chunk(const Sha256& key, const std::vector<uint8_t>& bytes);

  // -- dataset manifests --
  /// Commits the chunks put so far (commit_chunks), then stores the
  /// manifest durably: a manifest is never durable before its chunks here.
  Status put_manifest(const msg::DatasetManifest& manifest);
  Result<msg::DatasetManifest> get_manifest(const std::string& name);
  Result<std::vector<msg::DatasetManifest>> list_manifests();
  Status delete_manifest(const std::string& name);

  // -- checkpoints --
  /// Atomically replaces job's checkpoint with `state` at `step`.
  Status put_checkpoint(const std::string& job, uint64_t step, const std::vector<uint8_t>& state);
  /// The job's latest complete checkpoint; Errc::not_found if none,
  /// Errc::corrupt if its bytes fail their checksum.
  Result<Checkpoint> latest_checkpoint(const std::string& job);

  // -- metadata --
  Status put_meta(const std::string& key, const std::string& value);
  Result<std::string> get_meta(const std::string& key);

private:
  struct Impl;
  explicit Store(std::string dir, std::unique_ptr<Impl> impl);
  std::string dir_;
  std::unique_ptr<Impl> impl_;
};

} // namespace orbitrain
