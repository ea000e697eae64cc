// Implementation of store.hpp on RocksDB 7.8.
//
// Column families and their keys:
//   chunks       sha256 (32 bytes)          -> chunk bytes (blob files for large values)
//   chunk_index  sha256 (32 bytes)          -> size, 8 bytes little-endian
//   manifests    dataset name               -> DatasetManifest (Cap'n Proto, schemas/codec.hpp)
//   checkpoints  "<job>\0head"              -> CheckpointHead (below)
//                "<job>\0part\0<step:016x><index:08x>" -> part bytes
//   meta         free-form string keys      -> string values
#include "storage/store.hpp"

#include "schemas/codec.hpp"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <thread>

namespace orbitrain {

namespace {

constexpr size_t checkpoint_part_bytes = size_t{16} << 20;

// The pointer to a job's checkpoint: "OTCK", version 1, step, total bytes,
// part count, SHA-256 of the whole state. Little-endian, 64 bytes.
struct CheckpointHead {
  uint64_t step = 0;
  uint64_t total = 0;
  uint32_t parts = 0;
  Sha256 sha{};
};
constexpr size_t checkpoint_head_bytes = 4 + 4 + 8 + 8 + 4 + 32 + 4;
static_assert(checkpoint_head_bytes == 64, "checkpoint head layout changed");

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string encode_head(const CheckpointHead& h) {
  std::string out = "OTCK";
  put_u32(out, 1);
  put_u64(out, h.step);
  put_u64(out, h.total);
  put_u32(out, h.parts);
  out.append(reinterpret_cast<const char*>(h.sha.data()), h.sha.size());
  put_u32(out, 0); // reserved
  return out;
}

bool decode_head(const std::string& s, CheckpointHead& h) {
  if (s.size() != checkpoint_head_bytes || s.compare(0, 4, "OTCK") != 0 ||
      get_u32(s.data() + 4) != 1)
    return false;
  h.step = get_u64(s.data() + 8);
  h.total = get_u64(s.data() + 16);
  h.parts = get_u32(s.data() + 24);
  std::memcpy(h.sha.data(), s.data() + 28, 32);
  return true;
}

std::string head_key(const std::string& job) {
  return job + std::string("\0head", 5);
}

std::string part_prefix(const std::string& job) {
  return job + std::string("\0part\0", 6);
}

std::string part_key(const std::string& job, uint64_t step, uint32_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx%08x", static_cast<unsigned long long>(step), index);
  return part_prefix(job) + buf;
}

// Room for a chunk's two puts (bytes and index entry) in one WriteBatch, so
// that its buffer is allocated once instead of growing (and copying the
// chunk again) when the index entry follows the bytes.
size_t chunk_batch_bytes(size_t chunk_size) {
  return chunk_size + 256;
}

rocksdb::Slice key_of(const Sha256& h) {
  return rocksdb::Slice(reinterpret_cast<const char*>(h.data()), h.size());
}

Error db_error(const rocksdb::Status& s, const std::string& what) {
  return make_error(Errc::storage_error, what + ": " + s.ToString());
}

// A chunk's stored bytes, pinned where RocksDB read them; not_found or
// storage_error.
Status get_stored(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* chunks,
                  const rocksdb::ReadOptions& r, const Sha256& key, rocksdb::PinnableSlice& value) {
  auto s = db.Get(r, chunks, key_of(key), &value);
  if (s.IsNotFound())
    return make_error(Errc::not_found, "chunk " + short_hex(key) + " is not held here");
  if (!s.ok())
    return db_error(s, "cannot read chunk " + short_hex(key));
  return Ok{};
}

} // namespace

struct Store::Impl {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* chunks = nullptr;
  rocksdb::ColumnFamilyHandle* index = nullptr;
  rocksdb::ColumnFamilyHandle* manifests = nullptr;
  rocksdb::ColumnFamilyHandle* checkpoints = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  std::mutex checkpoint_mutex; // one checkpoint writer at a time per store

  ~Impl() {
    if (db) {
      for (auto* h : handles)
        db->DestroyColumnFamilyHandle(h);
      db->Close();
    }
  }
};

Store::Store(std::string dir, std::unique_ptr<Impl> impl)
    : dir_(std::move(dir)), impl_(std::move(impl)) {}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error(Errc::io_error, "cannot create store directory " + dir + ": " + ec.message());
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 4;
  // Chunk writes skip the WAL (put_chunk); flushing the column families
  // together keeps a chunk and its index entry both durable or both gone.
  db_options.atomic_flush = true;
  rocksdb::ColumnFamilyOptions chunk_options;
  chunk_options.enable_blob_files = true; // 1 MiB values: keep them out of the LSM tree
  chunk_options.min_blob_size = 4096;
  // Small memtables, several of them: chunks reach their blob files while
  // an ingest is still streaming, so that the commit at its end
  // (commit_chunks) has little left to write.
  chunk_options.write_buffer_size = 16 << 20;
  chunk_options.max_write_buffer_number = 4;
  chunk_options.compression = rocksdb::kNoCompression; // text compresses, but hashing dominates
  chunk_options.blob_compression_type = rocksdb::kNoCompression;
  rocksdb::ColumnFamilyOptions small_options;
  // Chunk keys are SHA-256s, spread over every file's key range: without a
  // filter, a lookup searches every L0 file's index for a key it lacks.
  rocksdb::BlockBasedTableOptions filtered;
  filtered.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  chunk_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(filtered));
  rocksdb::ColumnFamilyOptions index_options;
  index_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(filtered));
  // Flushed with the chunks (atomic_flush): as many memtables, or its
  // writes stop while a chunk memtable waits for the disk.
  index_options.max_write_buffer_number = chunk_options.max_write_buffer_number;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, small_options},
      {"chunks", chunk_options},
      {"chunk_index", index_options},
      {"manifests", small_options},
      {"checkpoints", chunk_options},
      {"meta", small_options},
  };
  auto impl = std::make_unique<Impl>();
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_options, dir, families, &impl->handles, &raw);
  if (!s.ok())
    return make_error(Errc::storage_error, "cannot open store " + dir + ": " + s.ToString());
  impl->db.reset(raw);
  impl->chunks = impl->handles[1];
  impl->index = impl->handles[2];
  impl->manifests = impl->handles[3];
  impl->checkpoints = impl->handles[4];
  impl->meta = impl->handles[5];
  return std::unique_ptr<Store>(new Store(dir, std::move(impl)));
}

// ---- chunks -----------------------------------------------------------------

Result<bool> Store::put_chunk(const Sha256& key, const uint8_t* data, size_t size, KeyCheck check) {
  if (check == KeyCheck::sha256 && sha256(data, size) != key)
    return make_error(Errc::corrupt,
                      "chunk " + short_hex(key) + ": bytes do not match their key; refused");
  bool dropped = false;
  auto held = has_chunk(key, true, &dropped);
  if (!held)
    return held.error();
  if (*held)
    return false;
  rocksdb::WriteBatch batch(chunk_batch_bytes(size));
  batch.Put(impl_->chunks, key_of(key), rocksdb::Slice(reinterpret_cast<const char*>(data), size));
  std::string sz;
  put_u64(sz, size);
  batch.Put(impl_->index, key_of(key), sz);
  // Not through the WAL: a chunk's bytes would be written twice (log, then
  // blob file), and the log is checksummed in software by Debian's RocksDB.
  // The chunk is durable once commit_chunks() (or a manifest) has run.
  rocksdb::WriteOptions w;
  w.disableWAL = true;
  auto s = impl_->db->Write(w, &batch);
  if (!s.ok())
    return db_error(s, "cannot store chunk " + short_hex(key));
  return true;
}

void Store::wait_until_idle() {
  for (;;) {
    uint64_t flushes = 0, compactions = 0, pending = 0;
    impl_->db->GetIntProperty("rocksdb.num-running-flushes", &flushes);
    impl_->db->GetIntProperty("rocksdb.num-running-compactions", &compactions);
    for (auto* h : impl_->handles) {
      uint64_t p = 0;
      impl_->db->GetIntProperty(h, "rocksdb.compaction-pending", &p);
      pending += p;
      impl_->db->GetIntProperty(h, "rocksdb.mem-table-flush-pending", &p);
      pending += p;
    }
    if (flushes + compactions + pending == 0)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status Store::commit_chunks() {
  rocksdb::FlushOptions f;
  f.wait = true;
  f.allow_write_stall = true;
  auto s = impl_->db->Flush(f, {impl_->chunks, impl_->index});
  if (!s.ok())
    return db_error(s, "cannot make the chunks durable");
  return Ok{};
}

Status Store::raw_read_chunk(const Sha256& key,
                             const std::function<void(const uint8_t*, size_t)>& use) {
  rocksdb::PinnableSlice value;
  if (auto st = get_stored(*impl_->db, impl_->chunks, rocksdb::ReadOptions(), key, value); !st)
    return st;
  use(reinterpret_cast<const uint8_t*>(value.data()), value.size());
  return Ok{};
}

Result<std::vector<uint8_t>> Store::raw_chunk(const Sha256& key) {
  std::vector<uint8_t> out;
  auto st = raw_read_chunk(key, [&](const uint8_t* p, size_t n) { out.assign(p, p + n); });
  if (!st)
    return st.error();
  return out;
}

Result<std::vector<uint8_t>> Store::get_chunk(const Sha256& key) {
  std::vector<uint8_t> out;
  auto st = read_chunk(key, [&](const uint8_t* p, size_t n) { out.assign(p, p + n); });
  if (!st)
    return st.error();
  return out;
}

Status Store::read_chunk(const Sha256& key,
                         const std::function<void(const uint8_t*, size_t)>& use) {
  rocksdb::PinnableSlice value;
  // The bytes are checked against their SHA-256 key below, which any
  // corruption RocksDB's CRC32C would catch fails too (a misdirected read
  // included: the key names the content). Debian's RocksDB computes that
  // CRC in software, at about the cost of the SHA-256 itself.
  rocksdb::ReadOptions r;
  r.verify_checksums = false;
  if (auto st = get_stored(*impl_->db, impl_->chunks, r, key, value); !st)
    return st;
  const auto* bytes = reinterpret_cast<const uint8_t*>(value.data());
  if (sha256(bytes, value.size()) != key)
    return make_error(Errc::corrupt, "chunk " + short_hex(key) + " in " + dir_ +
                                         " is corrupt: its bytes no longer match its key");
  use(bytes, value.size());
  return Ok{};
}

Result<bool> Store::has_chunk(const Sha256& key, bool verify, bool* dropped_corrupt) {
  if (dropped_corrupt)
    *dropped_corrupt = false;
  if (!verify) {
    std::string v;
    auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->index, key_of(key), &v);
    if (s.IsNotFound())
      return false;
    if (!s.ok())
      return db_error(s, "cannot read chunk index");
    return true;
  }
  auto bytes = read_chunk(key, [](const uint8_t*, size_t) {});
  if (bytes)
    return true;
  if (bytes.error().code == Errc::not_found)
    return false;
  if (bytes.error().code == Errc::corrupt) {
    auto st = delete_chunk(key);
    if (!st)
      return st.error();
    if (dropped_corrupt)
      *dropped_corrupt = true;
    return false;
  }
  return bytes.error();
}

Status Store::delete_chunk(const Sha256& key) {
  rocksdb::WriteBatch batch;
  batch.Delete(impl_->chunks, key_of(key));
  batch.Delete(impl_->index, key_of(key));
  auto s = impl_->db->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok())
    return db_error(s, "cannot delete chunk " + short_hex(key));
  return Ok{};
}

// A plain RocksDB write with RocksDB's default options (through the WAL):
// also the baseline of bench/data_bench.
Status Store::raw_put_chunk(const Sha256& key, const std::vector<uint8_t>& bytes) {
  rocksdb::WriteBatch batch(chunk_batch_bytes(bytes.size()));
  batch.Put(impl_->chunks, key_of(key),
            rocksdb::Slice(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  std::string sz;
  put_u64(sz, bytes.size());
  batch.Put(impl_->index, key_of(key), sz);
  auto s = impl_->db->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok())
    return db_error(s, "cannot write chunk " + short_hex(key));
  return Ok{};
}

Result<std::vector<ChunkInfo>> Store::list_chunks() {
  std::vector<ChunkInfo> out;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->index));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 32 || it->value().size() != 8)
      continue;
    ChunkInfo c;
    std::memcpy(c.hash.data(), it->key().data(), 32);
    c.size = get_u64(it->value().data());
    out.push_back(c);
  }
  if (!it->status().ok())
    return db_error(it->status(), "cannot list chunks");
  return out;
}

// ---- manifests ----------------------------------------------------------------

Status Store::put_manifest(const msg::DatasetManifest& m) {
  // The chunks a manifest lists are durable before the manifest is.
  if (auto st = commit_chunks(); !st)
    return st;
  auto bytes = msg::encode_manifest(m);
  rocksdb::WriteOptions w;
  w.sync = true;
  auto s =
      impl_->db->Put(w, impl_->manifests, m.name,
                     rocksdb::Slice(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (!s.ok())
    return db_error(s, "cannot store manifest " + m.name);
  return Ok{};
}

Result<msg::DatasetManifest> Store::get_manifest(const std::string& name) {
  std::string v;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->manifests, name, &v);
  if (s.IsNotFound())
    return make_error(Errc::not_found, "no dataset '" + name + "'");
  if (!s.ok())
    return db_error(s, "cannot read manifest " + name);
  return msg::decode_manifest(reinterpret_cast<const uint8_t*>(v.data()), v.size());
}

Result<std::vector<msg::DatasetManifest>> Store::list_manifests() {
  std::vector<msg::DatasetManifest> out;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->manifests));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto m = msg::decode_manifest(reinterpret_cast<const uint8_t*>(it->value().data()),
                                  it->value().size());
    if (!m)
      return make_error(Errc::corrupt, "manifest " + it->key().ToString() + " in " + dir_ +
                                           " is unreadable: " + m.error().message);
    out.push_back(std::move(*m));
  }
  if (!it->status().ok())
    return db_error(it->status(), "cannot list manifests");
  return out;
}

Status Store::delete_manifest(const std::string& name) {
  rocksdb::WriteOptions w;
  w.sync = true;
  auto s = impl_->db->Delete(w, impl_->manifests, name);
  if (!s.ok())
    return db_error(s, "cannot delete manifest " + name);
  return Ok{};
}

// ---- checkpoints ----------------------------------------------------------------

Status Store::put_checkpoint(const std::string& job, uint64_t step,
                             const std::vector<uint8_t>& state) {
  if (job.empty() || job.find('\0') != std::string::npos)
    return make_error(Errc::invalid_argument, "checkpoint job id must be a non-empty string");
  std::lock_guard<std::mutex> guard(impl_->checkpoint_mutex);
  CheckpointHead head;
  head.step = step;
  head.total = state.size();
  head.parts =
      static_cast<uint32_t>((state.size() + checkpoint_part_bytes - 1) / checkpoint_part_bytes);
  head.sha = sha256(state.data(), state.size());
  rocksdb::WriteBatch batch;
  // Remove every older part in the same batch: the old checkpoint disappears
  // exactly when the new one appears.
  const std::string prefix = part_prefix(job);
  batch.DeleteRange(impl_->checkpoints, prefix, part_key(job, step, 0));
  batch.DeleteRange(impl_->checkpoints, part_key(job, step + 1, 0), prefix + "\xff");
  for (uint32_t i = 0; i < head.parts; ++i) {
    size_t off = size_t{i} * checkpoint_part_bytes;
    size_t n = std::min(checkpoint_part_bytes, state.size() - off);
    batch.Put(impl_->checkpoints, part_key(job, step, i),
              rocksdb::Slice(reinterpret_cast<const char*>(state.data() + off), n));
  }
  batch.Put(impl_->checkpoints, head_key(job), encode_head(head));
  rocksdb::WriteOptions w;
  w.sync = true;
  auto s = impl_->db->Write(w, &batch);
  if (!s.ok())
    return db_error(s, "cannot write checkpoint of job " + job);
  return Ok{};
}

Result<Checkpoint> Store::latest_checkpoint(const std::string& job) {
  // One snapshot for head and parts: a concurrent writer cannot mix them.
  const rocksdb::Snapshot* snap = impl_->db->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{impl_->db.get(), snap};
  rocksdb::ReadOptions r;
  r.snapshot = snap;
  std::string raw;
  auto s = impl_->db->Get(r, impl_->checkpoints, head_key(job), &raw);
  if (s.IsNotFound())
    return make_error(Errc::not_found, "job " + job + " has no checkpoint in " + dir_);
  if (!s.ok())
    return db_error(s, "cannot read checkpoint of job " + job);
  CheckpointHead head;
  if (!decode_head(raw, head))
    return make_error(Errc::corrupt, "checkpoint head of job " + job + " is unreadable");
  Checkpoint out;
  out.step = head.step;
  out.state.reserve(head.total);
  for (uint32_t i = 0; i < head.parts; ++i) {
    rocksdb::PinnableSlice part;
    s = impl_->db->Get(r, impl_->checkpoints, part_key(job, head.step, i), &part);
    if (!s.ok())
      return make_error(Errc::corrupt, "checkpoint of job " + job + " at step " +
                                           std::to_string(head.step) + " lacks part " +
                                           std::to_string(i) + ": " + s.ToString());
    out.state.insert(out.state.end(), part.data(), part.data() + part.size());
  }
  if (out.state.size() != head.total || sha256(out.state.data(), out.state.size()) != head.sha)
    return make_error(Errc::corrupt, "checkpoint of job " + job + " at step " +
                                         std::to_string(head.step) + " fails its checksum");
  return out;
}

// ---- metadata -------------------------------------------------------------------

Status Store::put_meta(const std::string& key, const std::string& value) {
  auto s = impl_->db->Put(rocksdb::WriteOptions(), impl_->meta, key, value);
  if (!s.ok())
    return db_error(s, "cannot write metadata " + key);
  return Ok{};
}

Result<std::string> Store::get_meta(const std::string& key) {
  std::string v;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->meta, key, &v);
  if (s.IsNotFound())
    return make_error(Errc::not_found, "no metadata " + key);
  if (!s.ok())
    return db_error(s, "cannot read metadata " + key);
  return v;
}

} // namespace orbitrain
