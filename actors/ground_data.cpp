// Implementation of ground_data.hpp.
#include "actors/ground_data.hpp"

#include "actors/wire_message.hpp"
#include "core/byte_set.hpp"
#include "storage/hash_ring.hpp"
#include "storage/sha256.hpp"

#include <algorithm>
#include <array>
#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace orbitrain {

namespace {

using clock = std::chrono::steady_clock;

// The store actors of the satellites that answered.
struct Stores {
  std::vector<std::string> ids; // every satellite, file order
  std::map<std::string, caf::actor> up;
  std::vector<std::string> down; // "sat-3: why"

  bool is_up(const std::string& id) const { return up.count(id) != 0; }

  Stores() = default;
  Stores(Stores&&) = default;
  // The store actors were spawned for this command only.
  ~Stores() {
    for (auto& [id, a] : up)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
};

// With a ground link (GroundStation::link_wait), a satellite the station
// has no route to within `timeout` is out of contact: for this command, as
// good as down.
Stores connect_stores(GroundStation& ground, std::chrono::milliseconds timeout) {
  Stores s;
  const auto& sats = ground.constellation().satellites;
  std::vector<bool> in_contact(sats.size(), true);
  for (size_t i = 0; i < sats.size(); ++i)
    in_contact[i] = ground.link_wait(sats[i].id, 64, timeout).has_value();
  auto actors = ground.spawn_on_all("store", timeout);
  for (size_t i = 0; i < sats.size(); ++i) {
    s.ids.push_back(sats[i].id);
    if (!in_contact[i]) {
      if (actors[i])
        caf::anon_send_exit(*actors[i], caf::exit_reason::user_shutdown);
      s.down.push_back(sats[i].id + ": out of contact: ground station " + ground.ground_station() +
                       " has no route to " + sats[i].id + " within " +
                       std::to_string(timeout.count()) + " ms");
    } else if (actors[i]) {
      s.up[sats[i].id] = *actors[i];
    } else {
      s.down.push_back(sats[i].id + ": " + actors[i].error().message);
    }
  }
  return s;
}

// "no satellite is reachable" with the reason for each.
Error none_reachable(const Stores& stores) {
  std::string why;
  for (const auto& d : stores.down)
    why += "\n  " + d;
  return make_error(Errc::unreachable,
                    "no satellite is reachable" + (why.empty() ? "" : ":" + why));
}

// Requests in flight from one blocking actor to the store actors of
// `stores`, by satellite id, answered in the order sent: at most `window`
// outstanding; `done` runs for each reply (or error). With a ground link
// (GroundStation::hold) a request leaves only once the station has a route
// to its satellite and that route's delay has passed, and its reply is held
// the same way on arrival (the way down); one that finds no route within
// the timeout fails as out of contact. Without one, nothing waits.
class Pipeline {
public:
  using Done = std::function<void(Result<msg::Envelope>)>;
  using RawDone = std::function<void(Result<wire>)>;

  /// At most `window` requests outstanding, and at most `per_actor` (0: no
  /// limit of its own) to any one actor: what a slow receiver has not read
  /// yet waits in CAF's buffer for its connection, whose capacity stays.
  Pipeline(GroundStation& ground, const Stores& stores, std::chrono::milliseconds timeout,
           size_t window, size_t per_actor = 0)
      : ground_(ground), stores_(stores), self_(ground.system()), timeout_(timeout),
        window_(std::max<size_t>(1, window)), per_actor_(per_actor) {}

  /// Sends `w`; `done` gets the decoded reply. Returns a ticket for await().
  uint64_t send(const std::string& sat, wire w, Done done) {
    return send_message(sat, caf::make_message(std::move(w)),
                        [done = std::move(done)](Result<wire> r) {
                          done(r ? open_wire(*r) : Result<msg::Envelope>(r.error()));
                        });
  }

  /// Sends `m` (holding one wire) and hands `done` the reply undecoded. One
  /// message sent to several actors shares its bytes until CAF serializes it.
  uint64_t send_message(const std::string& sat, caf::message m, RawDone done) {
    const auto& to = stores_.up.at(sat);
    const auto addr = to.address();
    // A full actor waits for its own oldest request, not for the oldest of
    // all: one slow satellite does not hold back the others.
    while (per_actor_ > 0 && outstanding_[addr] >= per_actor_)
      await_oldest_to(addr);
    while (pending_.size() >= window_)
      pop();
    const uint64_t ticket = next_ticket_++;
    if (auto up = ground_.hold(sat, m.get_as<wire>(0).bytes.size(), timeout_); !up) {
      done(up.error());
      return ticket;
    }
    ++outstanding_[addr];
    pending_.push_back(
        Pending{self_->request(to, timeout_, std::move(m)), std::move(done), addr, sat, ticket});
    return ticket;
  }

  /// Waits for the reply to `ticket` alone and runs its `done`; requests
  /// sent before it may still be in flight (a presence query need not wait
  /// for the chunks sent ahead of it).
  void await(uint64_t ticket) {
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [ticket](const Pending& p) { return p.ticket == ticket; });
    if (it != pending_.end()) // else answered already
      finish(it);
  }

  /// Sends and waits for this one reply (after all earlier ones).
  Result<msg::Envelope> ask(const std::string& sat, wire w) {
    std::optional<Result<msg::Envelope>> out;
    send(sat, std::move(w), [&](Result<msg::Envelope> r) { out = std::move(r); });
    drain();
    return std::move(*out);
  }

  /// ask() with the reply undecoded.
  Result<wire> ask_raw(const std::string& sat, wire w) {
    std::optional<Result<wire>> out;
    send_message(sat, caf::make_message(std::move(w)), [&](Result<wire> r) { out = std::move(r); });
    drain();
    return std::move(*out);
  }

  void drain() {
    while (!pending_.empty())
      pop();
  }

private:
  using Handle = decltype(std::declval<caf::scoped_actor&>()->request(
      std::declval<caf::actor>(), std::chrono::milliseconds(1), std::declval<caf::message>()));
  struct Pending {
    Handle handle;
    RawDone done;
    caf::actor_addr to;
    std::string sat;
    uint64_t ticket;
  };

  void await_oldest_to(const caf::actor_addr& addr) {
    finish(std::find_if(pending_.begin(), pending_.end(),
                        [&addr](const Pending& p) { return p.to == addr; }));
  }

  void pop() { finish(pending_.begin()); }

  // Takes `it` out of the pending requests, receives its reply (only that
  // one: other replies wait in the mailbox) and runs its `done`.
  void finish(std::deque<Pending>::iterator it) {
    Pending p = std::move(*it);
    pending_.erase(it);
    if (--outstanding_[p.to] == 0)
      outstanding_.erase(p.to);
    std::optional<Result<wire>> r;
    p.handle.receive([&](wire& reply) { r = std::move(reply); },
                     [&](caf::error& e) {
                       r = make_error(e == caf::sec::request_timeout ? Errc::timeout
                                                                     : Errc::unreachable,
                                      self_->home_system().render(e));
                     });
    if (*r) // the way down
      if (auto down = ground_.hold(p.sat, (*r)->bytes.size(), timeout_); !down)
        r = down.error();
    p.done(std::move(*r));
  }

  GroundStation& ground_;
  const Stores& stores_;
  caf::scoped_actor self_;
  std::chrono::milliseconds timeout_;
  size_t window_;
  size_t per_actor_;
  std::map<caf::actor_addr, size_t> outstanding_;
  std::deque<Pending> pending_;
  uint64_t next_ticket_ = 0;
};

// The reply's body as T, or an error naming the satellite and what it said.
template <class T> Result<T> expect_body(Result<msg::Envelope> r, const std::string& sat) {
  if (!r)
    return make_error(r.error().code, sat + ": " + r.error().message);
  if (auto* e = std::get_if<msg::ErrorReply>(&r->body))
    return make_error(e->code == "corrupt"     ? Errc::corrupt
                      : e->code == "not_found" ? Errc::not_found
                                               : Errc::storage_error,
                      sat + ": " + e->message);
  if (auto* t = std::get_if<T>(&r->body))
    return std::move(*t);
  return make_error(Errc::malformed_message,
                    sat + " answered with an unexpected " + msg::kind_name(r->body));
}

// A chunk as received: the reply and where the chunk's bytes are inside it.
struct ReceivedChunk {
  wire message;
  msg::ByteView bytes;
};

// The reply as a chunk whose bytes are checked against `key` and `size`, or
// an error naming the satellite. The bytes are not copied out of the reply.
Result<ReceivedChunk> expect_chunk(Result<wire> r, const std::string& sat, const msg::Hash& key,
                                   uint64_t size) {
  if (!r)
    return make_error(r.error().code, sat + ": " + r.error().message);
  ReceivedChunk c{std::move(*r), {}};
  auto body = expect_body<msg::DataChunk>(open_wire_borrowing(c.message, c.bytes), sat);
  if (!body)
    return body.error();
  if (!body->data.empty()) { // decoded from a copy (unaligned input): keep the copy
    c.message.bytes.assign(body->data.begin(), body->data.end());
    c.bytes = msg::ByteView{c.message.bytes.data(), c.message.bytes.size()};
  }
  if (c.bytes.size != size || sha256(c.bytes.data, c.bytes.size) != key)
    return make_error(Errc::corrupt, sat + " sent chunk " + short_hex(key) +
                                         " with bytes that do not match its key");
  return c;
}

// SHA-256 of a stream of byte ranges, computed on a thread of its own, so
// that a command hashes the whole file while it does the rest: cat checks
// each chunk meanwhile, ingest hashes and sends each chunk. A range added as
// a ReceivedChunk is kept alive by it; one added with add_view() must stay
// valid until wait_hashed() says it is done. At most `max_queued` ranges
// wait; adding blocks beyond that.
class BackgroundSha256 {
public:
  explicit BackgroundSha256(size_t max_queued)
      : max_queued_(std::max<size_t>(1, max_queued)), thread_([this] { run(); }) {}
  ~BackgroundSha256() { finish(); }
  BackgroundSha256(const BackgroundSha256&) = delete;
  BackgroundSha256& operator=(const BackgroundSha256&) = delete;

  void add(ReceivedChunk chunk) { push(Item{chunk.bytes, std::move(chunk.message)}); }

  /// Adds a range the caller keeps; returns how many ranges were added so
  /// far, this one included (the number to wait for).
  uint64_t add_view(msg::ByteView bytes) { return push(Item{bytes, std::nullopt}); }

  /// Waits until the first `n` ranges added are hashed.
  void wait_hashed(uint64_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return hashed_ >= n; });
  }

  /// The hash of everything added; waits for the thread to finish.
  Sha256 finish() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable())
      thread_.join();
    return result_;
  }

private:
  struct Item {
    msg::ByteView bytes;
    std::optional<wire> owner; // keeps `bytes` alive, if set
  };

  uint64_t push(Item item) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return queue_.size() < max_queued_; });
    queue_.push_back(std::move(item));
    changed_.notify_all();
    return ++added_;
  }

  void run() {
    Sha256Stream sha;
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return !queue_.empty() || closed_; });
      if (queue_.empty())
        break;
      Item item = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      changed_.notify_all();
      sha.update(item.bytes.data, item.bytes.size);
      lock.lock();
      ++hashed_;
      lock.unlock();
      changed_.notify_all();
    }
    result_ = sha.finish();
  }

  const size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Item> queue_;
  uint64_t added_ = 0, hashed_ = 0;
  bool closed_ = false;
  Sha256 result_{};
  std::thread thread_; // last: starts after the members it uses
};

wire ground_wire(msg::Body body) {
  return make_wire("ground", std::move(body));
}

std::vector<msg::DatasetManifest> manifests_named(Pipeline& pipe, const Stores& stores,
                                                  const std::string& name) {
  std::vector<msg::DatasetManifest> out;
  for (const auto& [id, actor] : stores.up) {
    auto r =
        expect_body<msg::ManifestList>(pipe.ask(id, ground_wire(msg::ManifestRequest{name})), id);
    if (r)
      for (auto& m : r->manifests)
        out.push_back(std::move(m));
  }
  return out;
}

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

} // namespace

// ---- ingest -------------------------------------------------------------------

Result<IngestReport> ingest(GroundStation& ground, const IngestOptions& o,
                            const ProgressFn& progress) {
  const auto start = clock::now();
  const auto& c = ground.constellation();
  IngestReport report;
  if (o.dataset.empty() || o.dataset.size() > 128)
    return make_error(Errc::invalid_argument, "dataset name must have 1-128 characters");
  if (o.chunk_size < min_chunk_size || o.chunk_size > max_chunk_size)
    return make_error(Errc::invalid_argument,
                      "chunk size " + std::to_string(o.chunk_size) + " is out of range " +
                          std::to_string(min_chunk_size) + ".." + std::to_string(max_chunk_size) +
                          " bytes (4KiB..32MiB)");
  const unsigned replicas = o.replicas ? o.replicas : static_cast<unsigned>(c.storage.replicas);
  const unsigned min_replicas = o.min_replicas ? o.min_replicas : replicas;
  if (replicas < 1 || replicas > c.satellites.size())
    return make_error(Errc::invalid_argument,
                      "--replicas " + std::to_string(replicas) + " must be 1.." +
                          std::to_string(c.satellites.size()) + " (satellites in " + c.file + ")");
  if (min_replicas > replicas)
    return make_error(Errc::invalid_argument, "--min-replicas cannot exceed --replicas");
  report.replicas = replicas;

  std::ifstream in(o.file, std::ios::binary);
  if (!in)
    return make_error(Errc::io_error, "cannot read " + o.file + ": " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto size = static_cast<int64_t>(in.tellg());
  if (size < 0)
    return make_error(Errc::io_error, "cannot read " + o.file + " (is it a regular file?)");
  if (size == 0)
    return make_error(Errc::invalid_argument, o.file + " is empty: nothing to ingest");
  report.bytes = static_cast<uint64_t>(size);
  in.seekg(0);

  Stores stores = connect_stores(ground, o.timeout);
  report.down = stores.down;
  if (stores.up.size() < min_replicas) {
    std::string why;
    for (const auto& d : stores.down)
      why += "\n  " + d;
    return make_error(Errc::unreachable, "only " + std::to_string(stores.up.size()) +
                                             " satellites are reachable, " +
                                             std::to_string(min_replicas) +
                                             " copies of each chunk are required:" + why);
  }
  // `window` chunks per replica in flight, but no more than `window` to any
  // one satellite: a satellite that falls behind must not collect the whole
  // window in the client's buffer for its connection.
  Pipeline pipe(ground, stores, o.timeout, o.window * replicas, o.window);

  msg::DatasetManifest manifest;
  manifest.name = o.dataset;
  manifest.total_bytes = report.bytes;
  manifest.chunk_size = static_cast<uint32_t>(o.chunk_size);
  manifest.replicas = replicas;
  Sha256Stream whole;
  ByteSet vocabulary; // the tokenizer vocabulary: the byte values the file uses

  // A dataset of this name already? Then the file's hash decides, before any
  // chunk goes up: same content, nothing is sent twice; other content is
  // refused unless --overwrite. That takes a pass over the file of its own;
  // otherwise the one pass below computes the whole-file hash and vocabulary
  // on the way.
  const auto existing = manifests_named(pipe, stores, o.dataset);
  const bool hashed_first = !existing.empty();
  if (hashed_first) {
    std::vector<uint8_t> buf(4 << 20);
    while (in) {
      in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
      auto n = static_cast<size_t>(in.gcount());
      whole.update(buf.data(), n);
      vocabulary.add(buf.data(), n);
    }
    in.clear();
    in.seekg(0);
    manifest.sha256 = whole.finish();
  }
  for (const auto& m : existing) {
    if (m.sha256 == manifest.sha256 && m.chunk_size == manifest.chunk_size) {
      report.was_complete = true;
      manifest.created_at_ms = m.created_at_ms;
    } else if (!o.overwrite) {
      return make_error(Errc::already_exists,
                        "dataset '" + o.dataset + "' already exists with other content (" +
                            std::to_string(m.total_bytes) + " bytes, sha256 " +
                            short_hex(m.sha256) + "); pass --overwrite to replace it");
    }
  }

  // The chunks, a batch at a time: read, hash, ask the owners which copies
  // they hold, send the others. Each chunk is read into a slot of its own,
  // word-aligned, from which its message is encoded (one copy) and shared by
  // its owners; the sends stay in flight while the next batch is read. The
  // whole-file hash runs on a thread of its own, over one batch while the
  // next is read into a second buffer.
  HashRing ring(stores.ids);
  auto eligible = [&](const std::string& id) { return stores.is_up(id); };
  const size_t slot = (o.chunk_size + 7) / 8 * 8;
  const size_t batch_chunks = std::clamp<size_t>((size_t{8} << 20) / o.chunk_size, 1, 256);
  std::array<std::vector<uint64_t>, 2> batches; // uint64_t: 8-byte aligned
  std::array<uint64_t, 2> hashed_before_reuse{0, 0};
  std::optional<BackgroundSha256> whole_file;
  if (!hashed_first)
    whole_file.emplace(2 * batch_chunks);
  uint64_t offset = 0;
  std::optional<Error> failure;
  for (size_t batch_number = 0; offset < report.bytes && !failure; ++batch_number) {
    const size_t use = batch_number % 2;
    if (whole_file) // its previous batch must be hashed before it is read over
      whole_file->wait_hashed(hashed_before_reuse[use]);
    batches[use].resize(batch_chunks * slot / 8);
    auto* const batch_bytes = reinterpret_cast<uint8_t*>(batches[use].data());
    struct Piece {
      const uint8_t* data;
      size_t size;
      Sha256 hash;
      std::vector<std::string> owners;
    };
    std::vector<Piece> pieces;
    size_t got = 0;
    while (pieces.size() < batch_chunks && offset + got < report.bytes) {
      uint8_t* at = batch_bytes + pieces.size() * slot;
      in.read(reinterpret_cast<char*>(at), static_cast<std::streamsize>(o.chunk_size));
      const auto n = static_cast<size_t>(in.gcount());
      if (n == 0)
        return make_error(Errc::io_error, o.file + " shrank while it was read");
      Piece p;
      p.data = at;
      p.size = n;
      p.hash = sha256(p.data, p.size);
      if (whole_file) {
        hashed_before_reuse[use] = whole_file->add_view(msg::ByteView{p.data, p.size});
        vocabulary.add(p.data, p.size);
      }
      p.owners = ring.owners(p.hash, replicas, eligible);
      if (p.owners.size() < min_replicas)
        return make_error(Errc::unreachable,
                          "chunk " + std::to_string(manifest.chunk_hashes.size() + pieces.size()) +
                              " can reach only " + std::to_string(p.owners.size()) + " of " +
                              std::to_string(replicas) + " owners");
      got += n;
      pieces.push_back(std::move(p));
    }
    // Which copies exist already? One query per owner for the whole batch.
    std::map<std::string, std::vector<size_t>> asked;
    for (size_t i = 0; i < pieces.size(); ++i)
      for (const auto& owner : pieces[i].owners)
        asked[owner].push_back(i);
    std::set<std::pair<size_t, std::string>> present;
    std::vector<uint64_t> queries;
    for (const auto& [owner, idx] : asked) {
      msg::ChunkQuery q;
      for (size_t i : idx)
        q.hashes.push_back(pieces[i].hash);
      queries.push_back(pipe.send(owner, ground_wire(std::move(q)),
                                  [&, owner = owner, idx = idx](Result<msg::Envelope> r) {
                                    auto p = expect_body<msg::ChunkPresence>(std::move(r), owner);
                                    if (!p) {
                                      failure = p.error();
                                      return;
                                    }
                                    for (size_t k = 0; k < idx.size() && k < p->present.size(); ++k)
                                      if (p->present[k])
                                        present.insert({idx[k], owner});
                                  }));
    }
    // Only the answers: the previous batch's chunks stay in flight meanwhile.
    for (uint64_t q : queries)
      pipe.await(q);
    if (failure)
      break;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const auto& p = pieces[i];
      std::optional<caf::message> encoded; // one message serves every owner
      for (const auto& owner : p.owners) {
        if (present.count({i, owner})) {
          ++report.copies_present;
          continue;
        }
        if (!encoded)
          encoded =
              caf::make_message(make_chunk_wire("ground", o.dataset, manifest.chunk_hashes.size(),
                                                p.hash, msg::ByteView{p.data, p.size}));
        const size_t bytes = p.size;
        pipe.send_message(owner, *encoded, [&, owner = owner, bytes](Result<wire> r) {
          auto ack = expect_body<msg::ChunkAck>(
              r ? open_wire(*r) : Result<msg::Envelope>(r.error()), owner);
          if (!ack) {
            failure = ack.error();
            return;
          }
          ++report.copies_sent;
          report.bytes_sent += bytes;
        });
      }
      manifest.chunk_hashes.push_back(p.hash);
      manifest.chunk_sizes.push_back(p.size);
    }
    offset += got;
    if (progress)
      progress(offset, report.bytes);
  }
  pipe.drain();
  if (failure)
    return make_error(failure->code, "ingest of " + o.file + " failed: " + failure->message +
                                         " (run it again to resume)");
  if (whole_file)
    manifest.sha256 = whole_file->finish();
  manifest.vocabulary = vocabulary.values();
  report.chunks = manifest.chunk_hashes.size();
  if (!report.was_complete)
    manifest.created_at_ms = now_ms();
  // Complete: every chunk has its copies. Now the manifest, on every
  // satellite at once (each store syncs its log for it, and so the chunks).
  const wire manifest_wire = ground_wire(manifest);
  for (const auto& [id, actor] : stores.up)
    pipe.send(id, manifest_wire, [&, id = id](Result<msg::Envelope> r) {
      auto ack = expect_body<msg::ManifestList>(std::move(r), id);
      if (!ack && !failure)
        failure = ack.error();
    });
  pipe.drain();
  if (failure)
    return make_error(failure->code, "cannot store the manifest: " + failure->message);
  report.seconds = std::chrono::duration<double>(clock::now() - start).count();
  return report;
}

// ---- cat ----------------------------------------------------------------------

Result<CatReport> cat_dataset(GroundStation& ground, const std::string& name, std::FILE* out,
                              std::chrono::milliseconds timeout, const ProgressFn& progress) {
  CatReport report;
  Stores stores = connect_stores(ground, timeout);
  report.down = stores.down;
  if (stores.up.empty())
    return none_reachable(stores);
  Pipeline small(ground, stores, timeout, 16);
  auto manifests = manifests_named(small, stores, name);
  if (manifests.empty())
    return make_error(Errc::not_found, "unknown dataset '" + name + "' (asked " +
                                           std::to_string(stores.up.size()) + " satellites)");
  const auto manifest = manifests.front();
  HashRing ring(stores.ids);
  auto eligible = [&](const std::string& id) { return stores.is_up(id); };
  const size_t n = manifest.chunk_hashes.size();
  // About 32 MiB of chunks in flight, each asked of the replica with the
  // fewest requests outstanding, so every satellite holding copies serves.
  const size_t window =
      std::clamp<size_t>((size_t{32} << 20) / std::max<uint32_t>(manifest.chunk_size, 1), 4, 256);
  Pipeline pipe(ground, stores, timeout, window);
  const unsigned replicas = std::max<unsigned>(1, manifest.replicas);
  std::map<std::string, size_t> outstanding;
  BackgroundSha256 whole(window);
  // Replies land here in order; a failed first try is retried on the other
  // replicas when its turn to be written comes.
  std::vector<std::optional<ReceivedChunk>> ready(n);
  std::vector<std::vector<std::string>> candidates(n);
  std::vector<std::string> asked(n);
  std::vector<bool> answered(n, false);
  size_t next_write = 0;
  std::optional<Error> failure;
  auto write_ready = [&] {
    while (next_write < n && answered[next_write] && !failure) {
      const size_t i = next_write;
      if (!ready[i]) {
        // The first try failed: ask the others, one by one.
        for (const auto& sat : candidates[i]) {
          if (sat == asked[i])
            continue;
          auto c = expect_chunk(
              small.ask_raw(sat, ground_wire(msg::ChunkRequest{manifest.chunk_hashes[i]})), sat,
              manifest.chunk_hashes[i], manifest.chunk_sizes[i]);
          if (c) {
            ready[i] = std::move(*c);
            break;
          }
        }
        if (!ready[i]) {
          failure = make_error(Errc::not_found, "chunk " + std::to_string(i) + " (" +
                                                    short_hex(manifest.chunk_hashes[i]) +
                                                    ") has no valid copy on a reachable satellite");
          return;
        }
        ++report.fallbacks;
      }
      const auto bytes = ready[i]->bytes;
      if (std::fwrite(bytes.data, 1, bytes.size, out) != bytes.size) {
        failure = make_error(Errc::io_error, "cannot write the output");
        return;
      }
      report.bytes += bytes.size;
      whole.add(std::move(*ready[i]));
      ready[i].reset();
      ++next_write;
      if (progress)
        progress(report.bytes, manifest.total_bytes);
    }
  };
  for (size_t i = 0; i < n && !failure; ++i) {
    candidates[i] =
        ring.owners(manifest.chunk_hashes[i], static_cast<unsigned>(stores.ids.size()), eligible);
    if (candidates[i].empty())
      return make_error(Errc::unreachable, "no reachable satellite for chunk " + std::to_string(i));
    // Among the chunk's own replicas (the first owners that are up), the least busy.
    const size_t choices = std::min<size_t>(replicas, candidates[i].size());
    std::string sat = candidates[i][0];
    for (size_t k = 1; k < choices; ++k)
      if (outstanding[candidates[i][k]] < outstanding[sat])
        sat = candidates[i][k];
    asked[i] = sat;
    ++outstanding[sat];
    pipe.send_message(sat,
                      caf::make_message(ground_wire(msg::ChunkRequest{manifest.chunk_hashes[i]})),
                      [&, i, sat](Result<wire> r) {
                        answered[i] = true;
                        --outstanding[sat];
                        auto c = expect_chunk(std::move(r), sat, manifest.chunk_hashes[i],
                                              manifest.chunk_sizes[i]);
                        if (c)
                          ready[i] = std::move(*c);
                      });
    // Write what is complete, in order, keeping memory to the window.
    write_ready();
  }
  pipe.drain();
  write_ready();
  std::fflush(out);
  if (failure)
    return *failure;
  if (whole.finish() != manifest.sha256)
    return make_error(Errc::corrupt, "dataset '" + name + "' does not match its whole-file hash");
  return report;
}

// ---- survey ---------------------------------------------------------------------

Survey survey(GroundStation& ground, std::chrono::milliseconds timeout) {
  Survey s;
  Stores stores = connect_stores(ground, timeout);
  Pipeline pipe(ground, stores, timeout, 8);
  for (const auto& id : stores.ids) {
    SatelliteHoldings h;
    h.id = id;
    auto it = stores.up.find(id);
    if (it == stores.up.end()) {
      for (const auto& d : stores.down)
        if (d.rfind(id + ":", 0) == 0)
          h.error = d.substr(id.size() + 2);
      s.satellites.push_back(std::move(h));
      continue;
    }
    auto ml = expect_body<msg::ManifestList>(pipe.ask(id, ground_wire(msg::ManifestRequest{})), id);
    auto inv = expect_body<msg::Inventory>(pipe.ask(id, ground_wire(msg::InventoryRequest{})), id);
    if (!ml || !inv) {
      h.error = !ml ? ml.error().message : inv.error().message;
      s.satellites.push_back(std::move(h));
      continue;
    }
    h.up = true;
    for (auto& m : ml->manifests)
      h.manifests[m.name] = std::move(m);
    for (size_t i = 0; i < inv->hashes.size(); ++i)
      h.chunks[inv->hashes[i]] = inv->sizes[i];
    s.satellites.push_back(std::move(h));
  }
  std::map<std::string, DatasetSummary> by_name;
  for (const auto& h : s.satellites)
    for (const auto& [name, m] : h.manifests) {
      auto& d = by_name[name];
      if (d.held_by.empty())
        d.manifest = m;
      d.held_by.push_back(h.id);
    }
  for (auto& [name, d] : by_name) {
    const auto& m = d.manifest;
    d.copies.assign(m.chunk_hashes.size(), 0);
    for (const auto& h : s.satellites) {
      if (!h.up)
        continue;
      auto& per = d.per_satellite[h.id];
      for (size_t i = 0; i < m.chunk_hashes.size(); ++i)
        if (h.chunks.count(m.chunk_hashes[i])) {
          ++d.copies[i];
          ++per.first;
          per.second += m.chunk_sizes[i];
        }
    }
    d.min_copies = d.copies.empty() ? 0 : *std::min_element(d.copies.begin(), d.copies.end());
    for (unsigned c : d.copies)
      if (c < m.replicas)
        ++d.under_replicated;
    s.datasets.push_back(std::move(d));
  }
  return s;
}

// ---- repair ---------------------------------------------------------------------

Result<RepairReport> repair(GroundStation& ground, const std::string& name,
                            std::chrono::milliseconds timeout, const ProgressFn& progress) {
  RepairReport report;
  Stores stores = connect_stores(ground, timeout);
  report.down = stores.down;
  if (stores.up.empty())
    return none_reachable(stores);
  Pipeline pipe(ground, stores, timeout, 8);
  // Every manifest any reachable satellite holds (or the one asked for).
  std::map<std::string, msg::DatasetManifest> manifests;
  std::map<std::string, std::set<std::string>> manifest_holders;
  for (const auto& [id, actor] : stores.up) {
    auto ml =
        expect_body<msg::ManifestList>(pipe.ask(id, ground_wire(msg::ManifestRequest{name})), id);
    if (!ml)
      return ml.error();
    for (auto& m : ml->manifests) {
      manifest_holders[m.name].insert(id);
      manifests.emplace(m.name, std::move(m));
    }
  }
  if (!name.empty() && manifests.empty())
    return make_error(Errc::not_found, "unknown dataset '" + name + "'");
  HashRing ring(stores.ids);
  auto eligible = [&](const std::string& id) { return stores.is_up(id); };
  uint64_t total = 0, done = 0;
  for (const auto& [n, m] : manifests)
    total += m.total_bytes;
  for (const auto& [dname, m] : manifests) {
    const size_t count = m.chunk_hashes.size();
    report.chunks_checked += count;
    // Verify every copy everywhere; corrupt copies are dropped by the store.
    std::map<std::string, std::vector<bool>> holds;
    for (const auto& [id, actor] : stores.up) {
      std::vector<bool> present;
      for (size_t from = 0; from < count; from += 256) {
        msg::ChunkQuery q;
        q.verify = true;
        for (size_t i = from; i < std::min(count, from + 256); ++i)
          q.hashes.push_back(m.chunk_hashes[i]);
        auto p = expect_body<msg::ChunkPresence>(pipe.ask(id, ground_wire(std::move(q))), id);
        if (!p)
          return p.error();
        report.corrupt_dropped += p->corrupt_dropped;
        present.insert(present.end(), p->present.begin(), p->present.end());
      }
      holds[id] = std::move(present);
    }
    const unsigned replicas = std::max<unsigned>(1, m.replicas);
    std::set<std::string> given; // satellites given restored copies
    for (size_t i = 0; i < count; ++i) {
      auto desired = ring.owners(m.chunk_hashes[i], replicas, eligible);
      std::vector<std::string> holders;
      for (const auto& [id, present] : holds)
        if (present[i])
          holders.push_back(id);
      const size_t target = std::min<size_t>(replicas, stores.up.size());
      if (holders.size() >= target) {
        done += m.chunk_sizes[i];
        continue;
      }
      if (holders.empty()) {
        ++report.lost_chunks;
        continue;
      }
      // Fetch a verified copy from a holder, then give it to each missing owner.
      std::optional<std::vector<uint8_t>> bytes;
      for (const auto& h : holders) {
        auto c = expect_body<msg::DataChunk>(
            pipe.ask(h, ground_wire(msg::ChunkRequest{m.chunk_hashes[i]})), h);
        if (c && sha256(c->data.data(), c->data.size()) == m.chunk_hashes[i]) {
          bytes = std::move(c->data);
          break;
        }
      }
      if (!bytes) {
        ++report.lost_chunks;
        continue;
      }
      size_t have = holders.size();
      for (const auto& owner : desired) {
        if (have >= target)
          break;
        if (std::find(holders.begin(), holders.end(), owner) != holders.end())
          continue;
        msg::DataChunk chunk;
        chunk.dataset = dname;
        chunk.index = i;
        chunk.sha256 = m.chunk_hashes[i];
        chunk.data = *bytes;
        auto ack =
            expect_body<msg::ChunkAck>(pipe.ask(owner, ground_wire(std::move(chunk))), owner);
        if (!ack)
          return ack.error();
        ++have;
        ++report.copies_restored;
        report.bytes_sent += bytes->size();
        given.insert(owner);
      }
      done += m.chunk_sizes[i];
      if (progress)
        progress(done, total);
    }
    // The manifest belongs on every satellite; storing it again where
    // copies were restored commits them there (Store::put_manifest).
    for (const auto& [id, actor] : stores.up)
      if (!manifest_holders[dname].count(id) || given.count(id)) {
        auto ack = expect_body<msg::ManifestList>(pipe.ask(id, ground_wire(m)), id);
        if (!ack)
          return ack.error();
        if (!manifest_holders[dname].count(id))
          ++report.manifests_restored;
      }
  }
  return report;
}

} // namespace orbitrain
