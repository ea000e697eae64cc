// Implementation of codec.hpp. The only file that uses the generated
// Cap'n Proto classes of wire.capnp.
#include "schemas/codec.hpp"

#include "schemas/crc32c.hpp"
#include "schemas/wire.capnp.h"

#include <algorithm>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <chrono>
#include <cstring>
#include <kj/exception.h>
#include <limits>

namespace orbitrain::msg {

static_assert(msg::protocol_version == wire::PROTOCOL_VERSION,
              "messages.hpp and wire.capnp disagree on the protocol version");

size_t dtype_size(DType t) {
  switch (t) {
  case DType::f32:
  case DType::i32:
    return 4;
  case DType::bf16:
  case DType::f16:
    return 2;
  case DType::f64:
  case DType::i64:
    return 8;
  case DType::u8:
    return 1;
  }
  return 0;
}

const char* to_string(DType t) {
  switch (t) {
  case DType::f32:
    return "f32";
  case DType::bf16:
    return "bf16";
  case DType::f16:
    return "f16";
  case DType::f64:
    return "f64";
  case DType::i32:
    return "i32";
  case DType::i64:
    return "i64";
  case DType::u8:
    return "u8";
  }
  return "?";
}

const char* kind_name(const Body& body) {
  static constexpr const char* names[] = {
      "probeRequest",     "nodeStatus", "loadReport",  "dataChunk",       "tensorFrame",
      "taskAssignment",   "taskResult", "error",       "chunkQuery",      "chunkPresence",
      "chunkRequest",     "chunkAck",   "manifestPut", "manifestRequest", "manifestList",
      "inventoryRequest", "inventory",  "jobSpec",     "stepDone",        "paramsRequest"};
  static_assert(std::variant_size_v<Body> == std::size(names));
  return names[body.index()];
}

std::optional<uint64_t> tensor_bytes(DType dtype, const std::vector<uint64_t>& shape) {
  unsigned __int128 n = dtype_size(dtype);
  for (uint64_t d : shape) {
    n *= d;
    if (n > UINT64_MAX)
      return std::nullopt;
  }
  return static_cast<uint64_t>(n);
}

// ---- encode -----------------------------------------------------------------

namespace {

capnp::Data::Reader as_data(const uint8_t* p, size_t n) {
  return capnp::Data::Reader(p, n);
}

void write(wire::TensorSlice::Builder b, const TensorSlice& s) {
  b.setName(s.name);
  b.setDtype(static_cast<wire::DType>(s.dtype));
  auto shape = b.initShape(static_cast<unsigned>(s.shape.size()));
  for (unsigned i = 0; i < s.shape.size(); ++i)
    shape.set(i, s.shape[i]);
  b.setOffsetBytes(s.offset_bytes);
  b.setData(as_data(s.data.data(), s.data.size()));
}

std::vector<uint8_t> concat(const std::vector<Hash>& hashes) {
  std::vector<uint8_t> out(hashes.size() * 32);
  for (size_t i = 0; i < hashes.size(); ++i)
    std::memcpy(out.data() + 32 * i, hashes[i].data(), 32);
  return out;
}

void write_manifest(wire::DatasetManifest::Builder o, const DatasetManifest& m) {
  o.setName(m.name);
  auto hashes = concat(m.chunk_hashes);
  o.setChunkHashes(as_data(hashes.data(), hashes.size()));
  auto sizes = o.initChunkSizes(static_cast<unsigned>(m.chunk_sizes.size()));
  for (unsigned i = 0; i < m.chunk_sizes.size(); ++i)
    sizes.set(i, m.chunk_sizes[i]);
  o.setTotalBytes(m.total_bytes);
  o.setSha256(as_data(m.sha256.data(), m.sha256.size()));
  o.setVocabulary(as_data(m.vocabulary.data(), m.vocabulary.size()));
  o.setCreatedAtMs(m.created_at_ms);
  o.setChunkSize(m.chunk_size);
  o.setReplicas(m.replicas);
}

struct BodyWriter {
  wire::Envelope::Body::Builder b;
  capnp::Orphanage orphanage;
  const ByteView* borrowed = nullptr; // a DataChunk's bytes, kept outside the message

  void operator()(const ProbeRequest& m) { b.initProbeRequest().setNonce(m.nonce); }
  void operator()(const NodeStatus& m) {
    auto o = b.initNodeStatus();
    o.setNodeId(m.node_id);
    o.setNonce(m.nonce);
    o.setUptimeMs(m.uptime_ms);
    o.setPid(m.pid);
    o.setActorsRunning(m.actors_running);
    o.setSupervisedActors(m.supervised_actors);
    o.setCpuCount(m.cpu_count);
    o.setLoad1(m.load1);
    o.setProcessCpuSeconds(m.process_cpu_seconds);
    o.setRssBytes(m.rss_bytes);
    o.setMemTotalBytes(m.mem_total_bytes);
    o.setMemAvailableBytes(m.mem_available_bytes);
    o.setHasOrbit(m.has_orbit);
    o.setSimTimeS(m.sim_time_s);
    o.setLatDeg(m.lat_deg);
    o.setLonDeg(m.lon_deg);
    o.setAltKm(m.alt_km);
    o.setSunlit(m.sunlit);
    o.setStateOfCharge(m.state_of_charge);
    o.setInContact(m.in_contact);
    o.setLinksUp(m.links_up);
    o.setLinkHeld(m.link_held);
    o.setLinkDropped(m.link_dropped);
    o.setLinkDelivered(m.link_delivered);
    o.setLinkBytes(m.link_bytes);
    o.setMinStateOfCharge(m.min_state_of_charge);
    o.setBelowFloorS(m.below_floor_s);
  }
  void operator()(const LoadReport& m) {
    auto o = b.initLoadReport();
    o.setWorker(m.worker);
    o.setTasksQueued(m.tasks_queued);
    o.setTasksDone(m.tasks_done);
    o.setStepTimeMs(m.step_time_ms);
    o.setCpuLoad(m.cpu_load);
    o.setRssBytes(m.rss_bytes);
    o.setMemAvailableBytes(m.mem_available_bytes);
    o.setParamVersion(m.param_version);
    o.setHasEnergy(m.has_energy);
    o.setStateOfCharge(m.state_of_charge);
    o.setSunlit(m.sunlit);
    o.setInContact(m.in_contact);
    o.setSimTimeS(m.sim_time_s);
    o.setBusyMaxMs(m.busy_max_ms);
  }
  void operator()(const DataChunk& m) {
    auto o = b.initDataChunk();
    o.setDataset(m.dataset);
    o.setIndex(m.index);
    o.setSha256(as_data(m.sha256.data(), m.sha256.size()));
    const ByteView data = borrowed ? *borrowed : ByteView{m.data.data(), m.data.size()};
    o.setCrc32c(crc32c(data.data, data.size));
    if (!borrowed)
      o.setData(as_data(m.data.data(), m.data.size()));
    else if (borrowed->size > 0 && borrowed->size % sizeof(capnp::word) == 0 &&
             reinterpret_cast<uintptr_t>(borrowed->data) % alignof(capnp::word) == 0)
      // Whole aligned words become a segment of their own: written out once,
      // never copied here. (Cap'n Proto cannot point at an empty segment, and
      // would read past the end of a partial last word.)
      o.adoptData(orphanage.referenceExternalData(as_data(borrowed->data, borrowed->size)));
    else
      o.setData(as_data(borrowed->data, borrowed->size));
  }
  void operator()(const TensorFrame& m) {
    auto o = b.initTensorFrame();
    o.setKind(static_cast<wire::TensorKind>(m.kind));
    o.setVersion(m.version);
    o.setStep(m.step);
    o.setTaskId(m.task_id);
    o.setFrameIndex(m.frame_index);
    o.setFrameCount(m.frame_count);
    o.setTotalBytes(m.total_bytes);
    o.setMicroBatch(m.micro_batch);
    auto slices = o.initSlices(static_cast<unsigned>(m.slices.size()));
    for (unsigned i = 0; i < m.slices.size(); ++i)
      write(slices[i], m.slices[i]);
  }
  void operator()(const TaskAssignment& m) {
    auto o = b.initTaskAssignment();
    o.setTaskId(m.task_id);
    o.setStep(m.step);
    o.setMicroBatch(m.micro_batch);
    o.setParamVersion(m.param_version);
    o.setDataset(m.dataset);
    auto starts = o.initWindowStarts(static_cast<unsigned>(m.window_starts.size()));
    for (unsigned i = 0; i < m.window_starts.size(); ++i)
      starts.set(i, m.window_starts[i]);
    o.setWindowLength(m.window_length);
    o.setPlannedS(m.planned_s);
  }
  void operator()(const TaskResult& m) {
    auto o = b.initTaskResult();
    o.setTaskId(m.task_id);
    o.setStep(m.step);
    o.setMicroBatch(m.micro_batch);
    o.setParamVersion(m.param_version);
    o.setLoss(m.loss);
    o.setTokens(m.tokens);
    o.setComputeMs(m.compute_ms);
    o.setGradientFrames(m.gradient_frames);
    o.setErrorMessage(m.error_message);
    o.setDeclined(m.declined);
  }
  void operator()(const ErrorReply& m) {
    auto o = b.initError();
    o.setCode(m.code);
    o.setMessage(m.message);
    o.setInReplyTo(m.in_reply_to);
  }
  void operator()(const ChunkQuery& m) {
    auto o = b.initChunkQuery();
    auto hashes = concat(m.hashes);
    o.setHashes(as_data(hashes.data(), hashes.size()));
    o.setVerify(m.verify);
  }
  void operator()(const ChunkPresence& m) {
    auto o = b.initChunkPresence();
    auto present = o.initPresent(static_cast<unsigned>(m.present.size()));
    for (unsigned i = 0; i < m.present.size(); ++i)
      present.set(i, m.present[i]);
    o.setCorruptDropped(m.corrupt_dropped);
  }
  void operator()(const ChunkRequest& m) {
    b.initChunkRequest().setSha256(as_data(m.sha256.data(), m.sha256.size()));
  }
  void operator()(const ChunkAck& m) {
    auto o = b.initChunkAck();
    o.setSha256(as_data(m.sha256.data(), m.sha256.size()));
    o.setStored(m.stored);
  }
  void operator()(const DatasetManifest& m) { write_manifest(b.initManifestPut(), m); }
  void operator()(const ManifestRequest& m) { b.initManifestRequest().setName(m.name); }
  void operator()(const ManifestList& m) {
    auto list = b.initManifestList().initManifests(static_cast<unsigned>(m.manifests.size()));
    for (unsigned i = 0; i < m.manifests.size(); ++i)
      write_manifest(list[i], m.manifests[i]);
  }
  void operator()(const InventoryRequest&) { b.initInventoryRequest(); }
  void operator()(const ParamsRequest&) { b.initParamsRequest(); }
  void operator()(const JobSpec& m) {
    auto o = b.initJobSpec();
    o.setDataset(m.dataset);
    o.setModelConfig(m.model_config);
    o.setSteps(m.steps);
    o.setMicroBatch(m.micro_batch);
    o.setMicroBatchesPerStep(m.micro_batches_per_step);
    o.setSeed(m.seed);
    o.setSampler(m.sampler);
    o.setPrecision(m.precision);
    o.setThreads(m.threads);
    o.setLr(m.lr);
    o.setMinLr(m.min_lr);
    o.setWarmupSteps(m.warmup_steps);
    o.setDecaySteps(m.decay_steps);
    o.setBeta1(m.beta1);
    o.setBeta2(m.beta2);
    o.setEps(m.eps);
    o.setWeightDecay(m.weight_decay);
    o.setGradClip(m.grad_clip);
    auto sats = o.initSatellites(static_cast<unsigned>(m.satellites.size()));
    for (unsigned i = 0; i < m.satellites.size(); ++i) {
      sats[i].setId(m.satellites[i].id);
      sats[i].setHost(m.satellites[i].host);
      sats[i].setPort(m.satellites[i].port);
    }
    auto workers = o.initWorkers(static_cast<unsigned>(m.workers.size()));
    for (unsigned i = 0; i < m.workers.size(); ++i)
      workers.set(i, m.workers[i]);
    o.setScheduler(m.scheduler);
    o.setParameterServer(m.parameter_server);
    o.setTaskTimeoutMs(m.task_timeout_ms);
    o.setStartStep(m.start_step);
    o.setCheckpointEvery(m.checkpoint_every);
    o.setEvalEvery(m.eval_every);
    o.setEvalBatches(m.eval_batches);
    o.setMode(m.mode);
    o.setStaleness(m.staleness);
    o.setSchedulerPolicy(m.scheduler_policy);
  }
  void operator()(const StepDone& m) {
    auto o = b.initStepDone();
    o.setStep(m.step);
    o.setVersion(m.version);
    o.setLoss(m.loss);
    o.setTokens(m.tokens);
    o.setGradNorm(m.grad_norm);
    o.setLr(m.lr);
    auto t = o.initTasksPerWorker(static_cast<unsigned>(m.tasks_per_worker.size()));
    for (unsigned i = 0; i < m.tasks_per_worker.size(); ++i)
      t.set(i, m.tasks_per_worker[i]);
    o.setReassigned(m.reassigned);
    auto q = o.initQueueDepth(static_cast<unsigned>(m.queue_depth.size()));
    for (unsigned i = 0; i < m.queue_depth.size(); ++i)
      q.set(i, m.queue_depth[i]);
    auto tt = o.initTaskTimeMs(static_cast<unsigned>(m.task_time_ms.size()));
    for (unsigned i = 0; i < m.task_time_ms.size(); ++i)
      tt.set(i, m.task_time_ms[i]);
    o.setStragglers(m.stragglers);
    o.setStaleness(m.staleness);
    o.setRefused(m.refused);
    o.setStepMs(m.step_ms);
    o.setComputeMs(m.compute_ms);
    o.setUpdateMs(m.update_ms);
    o.setBytesIn(m.bytes_in);
    o.setBytesOut(m.bytes_out);
    o.setDeclined(m.declined);
    o.setHasValLoss(m.val_loss.has_value());
    o.setValLoss(m.val_loss.value_or(0.0));
  }
  void operator()(const Inventory& m) {
    auto o = b.initInventory();
    auto hashes = concat(m.hashes);
    o.setHashes(as_data(hashes.data(), hashes.size()));
    auto sizes = o.initSizes(static_cast<unsigned>(m.sizes.size()));
    for (unsigned i = 0; i < m.sizes.size(); ++i)
      sizes.set(i, m.sizes[i]);
  }
};

size_t payload_hint(const Body& body) {
  size_t n = 0;
  if (auto* c = std::get_if<DataChunk>(&body))
    n = c->data.size();
  else if (auto* m = std::get_if<DatasetManifest>(&body))
    n = m->chunk_hashes.size() * 40;
  else if (auto* l = std::get_if<ManifestList>(&body))
    for (const auto& m : l->manifests)
      n += m.chunk_hashes.size() * 40 + 256;
  else if (auto* inv = std::get_if<Inventory>(&body))
    n = inv->hashes.size() * 40;
  else if (auto* f = std::get_if<TensorFrame>(&body))
    for (const auto& s : f->slices)
      n += s.data.size() + s.name.size() + 8 * s.shape.size() + 64;
  return n / sizeof(capnp::word) + 1024;
}

} // namespace

namespace {

// Appends what capnp writes to a vector whose capacity is reserved up front:
// the bytes are copied once, never zero-filled first.
class AppendStream : public kj::OutputStream {
public:
  explicit AppendStream(Bytes& out) : out_(out) {}
  void write(const void* buffer, size_t size) override {
    // resize() + memcpy: insert() would construct byte by byte through
    // the no-init allocator instead of one memcpy.
    const size_t at = out_.size();
    out_.resize(at + size);
    if (size)
      std::memcpy(out_.data() + at, buffer, size);
  }

private:
  Bytes& out_;
};

// The message in messageToFlatArray's layout, in one buffer of ours.
Bytes flat_bytes(capnp::MessageBuilder& builder) {
  auto segments = builder.getSegmentsForOutput();
  Bytes out;
  out.reserve(capnp::computeSerializedSizeInWords(segments) * sizeof(capnp::word));
  AppendStream stream(out);
  capnp::writeMessage(stream, segments);
  return out;
}

Bytes encode_impl(const Envelope& e, const ByteView* borrowed) {
  // One first segment big enough for the payload keeps the message flat
  // (borrowed chunk bytes go in a second segment of their own).
  capnp::MallocMessageBuilder builder(static_cast<unsigned>(
      std::min<size_t>(payload_hint(e.body), std::numeric_limits<unsigned>::max())));
  auto root = builder.initRoot<wire::Envelope>();
  root.setProtocolVersion(e.protocol_version);
  root.setJobId(e.job_id);
  root.setSender(e.sender);
  root.setSentAtNs(e.sent_at_ns);
  std::visit(BodyWriter{root.initBody(), builder.getOrphanage(), borrowed}, e.body);
  return flat_bytes(builder);
}

} // namespace

Bytes encode(const Envelope& e) {
  return encode_impl(e, nullptr);
}

Result<Bytes> encode_chunk(const Envelope& e, ByteView chunk_data) {
  auto* c = std::get_if<DataChunk>(&e.body);
  if (!c || !c->data.empty())
    return make_error(Errc::invalid_argument,
                      "encode_chunk needs a dataChunk envelope without data of its own");
  return encode_impl(e, &chunk_data);
}

// ---- decode -----------------------------------------------------------------

namespace {

struct DecodeFailure {
  Errc code;
  std::string message;
};

[[noreturn]] void fail(Errc code, std::string message) {
  throw DecodeFailure{code, std::move(message)};
}

std::string text(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

std::vector<uint8_t> bytes(capnp::Data::Reader d) {
  return std::vector<uint8_t>(d.begin(), d.end());
}

DType read_dtype(wire::DType d, const std::string& where) {
  auto v = static_cast<uint16_t>(d);
  if (v > static_cast<uint16_t>(DType::u8))
    fail(Errc::malformed_message, where + ": unknown dtype " + std::to_string(v));
  return static_cast<DType>(v);
}

TensorSlice read_slice(wire::TensorSlice::Reader r, size_t i) {
  TensorSlice s;
  std::string where = "tensorFrame.slices[" + std::to_string(i) + "]";
  if (!r.hasName() || r.getName().size() == 0)
    fail(Errc::missing_field, where + ".name is missing");
  s.name = text(r.getName());
  where += " (" + s.name + ")";
  s.dtype = read_dtype(r.getDtype(), where);
  for (auto d : r.getShape())
    s.shape.push_back(d);
  s.offset_bytes = r.getOffsetBytes();
  s.data = bytes(r.getData());
  auto total = tensor_bytes(s.dtype, s.shape);
  if (!total)
    fail(Errc::malformed_message, where + ": shape overflows 64 bits");
  size_t esz = dtype_size(s.dtype);
  if (s.offset_bytes % esz != 0 || s.data.size() % esz != 0)
    fail(Errc::malformed_message, where + ": slice is not aligned to whole elements");
  if (s.offset_bytes > *total || s.data.size() > *total - s.offset_bytes)
    fail(Errc::malformed_message, where + ": slice [" + std::to_string(s.offset_bytes) + ", +" +
                                      std::to_string(s.data.size()) + ") exceeds the tensor's " +
                                      std::to_string(*total) + " bytes");
  return s;
}

Hash read_hash(capnp::Data::Reader d, const std::string& where) {
  Hash h{};
  if (d.size() != h.size())
    fail(Errc::malformed_message,
         where + " has " + std::to_string(d.size()) + " bytes, expected 32");
  std::memcpy(h.data(), d.begin(), h.size());
  return h;
}

std::vector<Hash> read_hashes(capnp::Data::Reader d, const std::string& where) {
  if (d.size() % 32 != 0)
    fail(Errc::malformed_message,
         where + " has " + std::to_string(d.size()) + " bytes, not a multiple of 32");
  std::vector<Hash> out(d.size() / 32);
  for (size_t i = 0; i < out.size(); ++i)
    std::memcpy(out[i].data(), d.begin() + 32 * i, 32);
  return out;
}

DatasetManifest read_manifest(wire::DatasetManifest::Reader r, const std::string& where) {
  DatasetManifest m;
  if (!r.hasName() || r.getName().size() == 0)
    fail(Errc::missing_field, where + ".name is missing");
  m.name = text(r.getName());
  m.chunk_hashes = read_hashes(r.getChunkHashes(), where + ".chunkHashes");
  for (auto s : r.getChunkSizes())
    m.chunk_sizes.push_back(s);
  if (m.chunk_sizes.size() != m.chunk_hashes.size())
    fail(Errc::malformed_message, where + " (" + m.name + ") lists " +
                                      std::to_string(m.chunk_hashes.size()) + " hashes but " +
                                      std::to_string(m.chunk_sizes.size()) + " sizes");
  m.total_bytes = r.getTotalBytes();
  uint64_t sum = 0;
  for (auto s : m.chunk_sizes)
    sum += s;
  if (sum != m.total_bytes)
    fail(Errc::malformed_message, where + " (" + m.name + "): chunk sizes add up to " +
                                      std::to_string(sum) + ", not totalBytes " +
                                      std::to_string(m.total_bytes));
  m.sha256 = read_hash(r.getSha256(), where + ".sha256");
  m.vocabulary = bytes(r.getVocabulary());
  m.created_at_ms = r.getCreatedAtMs();
  m.chunk_size = r.getChunkSize();
  m.replicas = r.getReplicas();
  return m;
}

// With `borrow`, a DataChunk's bytes are not copied: *borrow points at them.
Body read_body(wire::Envelope::Body::Reader b, ByteView* borrow) {
  switch (b.which()) {
  case wire::Envelope::Body::PROBE_REQUEST:
    return ProbeRequest{b.getProbeRequest().getNonce()};
  case wire::Envelope::Body::NODE_STATUS: {
    auto r = b.getNodeStatus();
    NodeStatus m;
    if (!r.hasNodeId())
      fail(Errc::missing_field, "nodeStatus.nodeId is missing");
    m.node_id = text(r.getNodeId());
    m.nonce = r.getNonce();
    m.uptime_ms = r.getUptimeMs();
    m.pid = r.getPid();
    m.actors_running = r.getActorsRunning();
    m.supervised_actors = r.getSupervisedActors();
    m.cpu_count = r.getCpuCount();
    m.load1 = r.getLoad1();
    m.process_cpu_seconds = r.getProcessCpuSeconds();
    m.rss_bytes = r.getRssBytes();
    m.mem_total_bytes = r.getMemTotalBytes();
    m.mem_available_bytes = r.getMemAvailableBytes();
    m.has_orbit = r.getHasOrbit();
    if (m.has_orbit) {
      m.sim_time_s = r.getSimTimeS();
      m.lat_deg = r.getLatDeg();
      m.lon_deg = r.getLonDeg();
      m.alt_km = r.getAltKm();
      m.sunlit = r.getSunlit();
      m.state_of_charge = r.getStateOfCharge();
      m.in_contact = r.getInContact();
      m.links_up = r.getLinksUp();
      m.link_held = r.getLinkHeld();
      m.link_dropped = r.getLinkDropped();
      m.link_delivered = r.getLinkDelivered();
      m.link_bytes = r.getLinkBytes();
      m.min_state_of_charge = r.getMinStateOfCharge();
      m.below_floor_s = r.getBelowFloorS();
    }
    return m;
  }
  case wire::Envelope::Body::LOAD_REPORT: {
    auto r = b.getLoadReport();
    LoadReport m;
    if (!r.hasWorker())
      fail(Errc::missing_field, "loadReport.worker is missing");
    m.worker = text(r.getWorker());
    m.tasks_queued = r.getTasksQueued();
    m.tasks_done = r.getTasksDone();
    m.step_time_ms = r.getStepTimeMs();
    m.cpu_load = r.getCpuLoad();
    m.rss_bytes = r.getRssBytes();
    m.mem_available_bytes = r.getMemAvailableBytes();
    m.param_version = r.getParamVersion();
    m.has_energy = r.getHasEnergy();
    if (m.has_energy) {
      m.state_of_charge = r.getStateOfCharge();
      m.sunlit = r.getSunlit();
      m.in_contact = r.getInContact();
      m.sim_time_s = r.getSimTimeS();
    }
    m.busy_max_ms = r.getBusyMaxMs();
    return m;
  }
  case wire::Envelope::Body::DATA_CHUNK: {
    auto r = b.getDataChunk();
    DataChunk m;
    if (!r.hasDataset())
      fail(Errc::missing_field, "dataChunk.dataset is missing");
    m.dataset = text(r.getDataset());
    m.index = r.getIndex();
    m.sha256 = read_hash(r.getSha256(), "dataChunk.sha256");
    if (!r.hasData())
      fail(Errc::missing_field, "dataChunk.data is missing");
    auto d = r.getData();
    if (crc32c(d.begin(), d.size()) != r.getCrc32c())
      fail(Errc::corrupt, "dataChunk.data (chunk " + std::to_string(m.index) + " of '" + m.dataset +
                              "', " + std::to_string(d.size()) +
                              " bytes) fails its CRC32C: damaged on the way");
    if (borrow)
      *borrow = ByteView{d.begin(), d.size()};
    else
      m.data = bytes(d);
    return m;
  }
  case wire::Envelope::Body::TENSOR_FRAME: {
    auto r = b.getTensorFrame();
    TensorFrame m;
    auto kind = static_cast<uint16_t>(r.getKind());
    if (kind > static_cast<uint16_t>(TensorKind::activations))
      fail(Errc::malformed_message, "tensorFrame.kind " + std::to_string(kind) + " is unknown");
    m.kind = static_cast<TensorKind>(kind);
    m.version = r.getVersion();
    m.step = r.getStep();
    m.task_id = r.getTaskId();
    m.frame_index = r.getFrameIndex();
    m.frame_count = r.getFrameCount();
    if (m.frame_count == 0 || m.frame_index >= m.frame_count)
      fail(Errc::malformed_message, "tensorFrame: frame " + std::to_string(m.frame_index) + " of " +
                                        std::to_string(m.frame_count));
    m.total_bytes = r.getTotalBytes();
    m.micro_batch = r.getMicroBatch();
    auto slices = r.getSlices();
    m.slices.reserve(slices.size());
    for (unsigned i = 0; i < slices.size(); ++i)
      m.slices.push_back(read_slice(slices[i], i));
    return m;
  }
  case wire::Envelope::Body::TASK_ASSIGNMENT: {
    auto r = b.getTaskAssignment();
    TaskAssignment m;
    m.task_id = r.getTaskId();
    m.step = r.getStep();
    m.micro_batch = r.getMicroBatch();
    m.param_version = r.getParamVersion();
    if (!r.hasDataset())
      fail(Errc::missing_field, "taskAssignment.dataset is missing");
    m.dataset = text(r.getDataset());
    for (auto s : r.getWindowStarts())
      m.window_starts.push_back(s);
    m.window_length = r.getWindowLength();
    if (m.window_length == 0)
      fail(Errc::missing_field, "taskAssignment.windowLength is missing");
    m.planned_s = r.getPlannedS();
    return m;
  }
  case wire::Envelope::Body::TASK_RESULT: {
    auto r = b.getTaskResult();
    TaskResult m;
    m.task_id = r.getTaskId();
    m.step = r.getStep();
    m.micro_batch = r.getMicroBatch();
    m.param_version = r.getParamVersion();
    m.loss = r.getLoss();
    m.tokens = r.getTokens();
    m.compute_ms = r.getComputeMs();
    m.gradient_frames = r.getGradientFrames();
    m.error_message = text(r.getErrorMessage());
    m.declined = r.getDeclined();
    return m;
  }
  case wire::Envelope::Body::ERROR: {
    auto r = b.getError();
    ErrorReply m;
    if (!r.hasCode())
      fail(Errc::missing_field, "error.code is missing");
    m.code = text(r.getCode());
    m.message = text(r.getMessage());
    m.in_reply_to = text(r.getInReplyTo());
    return m;
  }
  case wire::Envelope::Body::CHUNK_QUERY: {
    auto r = b.getChunkQuery();
    return ChunkQuery{read_hashes(r.getHashes(), "chunkQuery.hashes"), r.getVerify()};
  }
  case wire::Envelope::Body::CHUNK_PRESENCE: {
    auto r = b.getChunkPresence();
    ChunkPresence m;
    for (bool p : r.getPresent())
      m.present.push_back(p);
    m.corrupt_dropped = r.getCorruptDropped();
    return m;
  }
  case wire::Envelope::Body::CHUNK_REQUEST:
    return ChunkRequest{read_hash(b.getChunkRequest().getSha256(), "chunkRequest.sha256")};
  case wire::Envelope::Body::CHUNK_ACK: {
    auto r = b.getChunkAck();
    return ChunkAck{read_hash(r.getSha256(), "chunkAck.sha256"), r.getStored()};
  }
  case wire::Envelope::Body::MANIFEST_PUT:
    return read_manifest(b.getManifestPut(), "manifestPut");
  case wire::Envelope::Body::MANIFEST_REQUEST:
    return ManifestRequest{text(b.getManifestRequest().getName())};
  case wire::Envelope::Body::MANIFEST_LIST: {
    ManifestList m;
    auto list = b.getManifestList().getManifests();
    for (unsigned i = 0; i < list.size(); ++i)
      m.manifests.push_back(read_manifest(list[i], "manifestList[" + std::to_string(i) + "]"));
    return m;
  }
  case wire::Envelope::Body::INVENTORY_REQUEST:
    return InventoryRequest{};
  case wire::Envelope::Body::PARAMS_REQUEST:
    return ParamsRequest{};
  case wire::Envelope::Body::JOB_SPEC: {
    auto r = b.getJobSpec();
    JobSpec m;
    if (!r.hasDataset() || !r.hasModelConfig())
      fail(Errc::missing_field, "jobSpec.dataset or jobSpec.modelConfig is missing");
    m.dataset = text(r.getDataset());
    m.model_config = text(r.getModelConfig());
    m.steps = r.getSteps();
    m.micro_batch = r.getMicroBatch();
    m.micro_batches_per_step = r.getMicroBatchesPerStep();
    if (m.micro_batch == 0 || m.micro_batches_per_step == 0)
      fail(Errc::missing_field, "jobSpec.microBatch and microBatchesPerStep must be positive");
    m.seed = r.getSeed();
    m.sampler = text(r.getSampler());
    m.precision = text(r.getPrecision());
    m.threads = r.getThreads();
    m.lr = r.getLr();
    m.min_lr = r.getMinLr();
    m.warmup_steps = r.getWarmupSteps();
    m.decay_steps = r.getDecaySteps();
    m.beta1 = r.getBeta1();
    m.beta2 = r.getBeta2();
    m.eps = r.getEps();
    m.weight_decay = r.getWeightDecay();
    m.grad_clip = r.getGradClip();
    for (auto s : r.getSatellites())
      m.satellites.push_back(SatelliteAddress{text(s.getId()), text(s.getHost()), s.getPort()});
    for (auto w : r.getWorkers())
      m.workers.push_back(text(w));
    m.scheduler = text(r.getScheduler());
    m.parameter_server = text(r.getParameterServer());
    m.task_timeout_ms = r.getTaskTimeoutMs();
    m.start_step = r.getStartStep();
    m.checkpoint_every = r.getCheckpointEvery();
    m.eval_every = r.getEvalEvery();
    m.eval_batches = r.getEvalBatches();
    m.mode = r.hasMode() ? text(r.getMode()) : "sync";
    if (m.mode != "sync" && m.mode != "async")
      fail(Errc::malformed_message, "jobSpec.mode must be sync or async, not '" + m.mode + "'");
    m.staleness = r.getStaleness();
    m.scheduler_policy = r.hasSchedulerPolicy() ? text(r.getSchedulerPolicy()) : "aware";
    if (m.scheduler_policy != "aware" && m.scheduler_policy != "load")
      fail(Errc::malformed_message,
           "jobSpec.schedulerPolicy must be aware or load, not '" + m.scheduler_policy + "'");
    return m;
  }
  case wire::Envelope::Body::STEP_DONE: {
    auto r = b.getStepDone();
    StepDone m;
    m.step = r.getStep();
    m.version = r.getVersion();
    m.loss = r.getLoss();
    m.tokens = r.getTokens();
    m.grad_norm = r.getGradNorm();
    m.lr = r.getLr();
    for (auto t : r.getTasksPerWorker())
      m.tasks_per_worker.push_back(t);
    m.reassigned = r.getReassigned();
    if (r.getHasValLoss())
      m.val_loss = r.getValLoss();
    for (auto q : r.getQueueDepth())
      m.queue_depth.push_back(q);
    for (auto t : r.getTaskTimeMs())
      m.task_time_ms.push_back(t);
    m.stragglers = r.getStragglers();
    m.staleness = r.getStaleness();
    m.refused = r.getRefused();
    m.step_ms = r.getStepMs();
    m.compute_ms = r.getComputeMs();
    m.update_ms = r.getUpdateMs();
    m.bytes_in = r.getBytesIn();
    m.bytes_out = r.getBytesOut();
    m.declined = r.getDeclined();
    return m;
  }
  case wire::Envelope::Body::INVENTORY: {
    auto r = b.getInventory();
    Inventory m;
    m.hashes = read_hashes(r.getHashes(), "inventory.hashes");
    for (auto s : r.getSizes())
      m.sizes.push_back(s);
    if (m.sizes.size() != m.hashes.size())
      fail(Errc::malformed_message, "inventory lists " + std::to_string(m.hashes.size()) +
                                        " hashes but " + std::to_string(m.sizes.size()) + " sizes");
    return m;
  }
  }
  fail(Errc::malformed_message, "unknown message kind " +
                                    std::to_string(static_cast<unsigned>(b.which())) +
                                    " (sent by a newer protocol?)");
}

} // namespace

namespace {

// Opens `data` as an Envelope (size, alignment, protocol version, sender) and
// hands the root to `read`, turning every failure into an Error. `aligned`:
// the caller keeps pointers into `data`, so it may not be copied.
template <class T, class Read>
Result<T> read_envelope(const uint8_t* data, size_t size, const DecodeLimits& limits,
                        bool must_be_aligned, Read&& read) {
  if (size > limits.max_message_bytes)
    return make_error(Errc::oversized_message, "message of " + std::to_string(size) +
                                                   " bytes exceeds the limit of " +
                                                   std::to_string(limits.max_message_bytes));
  if (size < sizeof(capnp::word) || size % sizeof(capnp::word) != 0)
    return make_error(Errc::malformed_message, "message of " + std::to_string(size) +
                                                   " bytes is not a whole number of 8-byte words "
                                                   "(truncated?)");
  // FlatArrayMessageReader needs 8-byte alignment; copy only when unaligned.
  kj::Array<capnp::word> copy;
  const capnp::word* words = reinterpret_cast<const capnp::word*>(data);
  if (reinterpret_cast<uintptr_t>(data) % alignof(capnp::word) != 0) {
    if (must_be_aligned)
      return make_error(Errc::invalid_argument, "message bytes are not 8-byte aligned");
    copy = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
    std::memcpy(copy.begin(), data, size);
    words = copy.begin();
  }
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = limits.max_message_bytes / sizeof(capnp::word) + 1024;
    options.nestingLimit = 16;
    kj::ArrayPtr<const capnp::word> view(words, size / sizeof(capnp::word));
    capnp::FlatArrayMessageReader reader(view, options);
    if (reader.getEnd() != view.end())
      return make_error(Errc::malformed_message,
                        std::to_string((view.end() - reader.getEnd()) * sizeof(capnp::word)) +
                            " trailing bytes after the message");
    auto root = reader.getRoot<wire::Envelope>();
    if (root.getProtocolVersion() != msg::protocol_version)
      return make_error(Errc::protocol_version, "protocol version " +
                                                    std::to_string(root.getProtocolVersion()) +
                                                    " is not supported (this build speaks " +
                                                    std::to_string(msg::protocol_version) + ")");
    if (text(root.getSender()).empty())
      return make_error(Errc::missing_field, "envelope.sender is missing");
    return read(root);
  } catch (const DecodeFailure& f) {
    return make_error(f.code, f.message);
  } catch (const kj::Exception& e) {
    std::string what = e.getDescription().cStr();
    Errc code = what.find("traversal limit") != std::string::npos ? Errc::oversized_message
                                                                  : Errc::malformed_message;
    return make_error(code, "invalid Cap'n Proto message: " + what);
  }
}

} // namespace

namespace {

// decode(); `borrow` (only for 8-byte aligned input, which is read in place)
// receives a DataChunk's bytes instead of the body.
Result<Envelope> decode_impl(const uint8_t* data, size_t size, const DecodeLimits& limits,
                             ByteView* borrow) {
  return read_envelope<Envelope>(data, size, limits, false,
                                 [borrow](wire::Envelope::Reader root) -> Result<Envelope> {
                                   Envelope out;
                                   out.protocol_version = root.getProtocolVersion();
                                   out.job_id = text(root.getJobId());
                                   out.sender = text(root.getSender());
                                   out.sent_at_ns = root.getSentAtNs();
                                   out.body = read_body(root.getBody(), borrow);
                                   return out;
                                 });
}

} // namespace

Result<Envelope> decode(const uint8_t* data, size_t size, const DecodeLimits& limits) {
  return decode_impl(data, size, limits, nullptr);
}

Result<Envelope> decode_borrowing(const uint8_t* data, size_t size, ByteView& chunk_data,
                                  const DecodeLimits& limits) {
  chunk_data = ByteView{};
  const bool aligned = reinterpret_cast<uintptr_t>(data) % alignof(capnp::word) == 0;
  auto out = decode_impl(data, size, limits, aligned ? &chunk_data : nullptr);
  if (!out)
    chunk_data = ByteView{};
  else if (!aligned)
    if (auto* c = std::get_if<DataChunk>(&out->body))
      chunk_data = ByteView{c->data.data(), c->data.size()};
  return out;
}

Bytes encode_flat_frame(const std::string& sender, const std::string& job_id,
                        const TensorFrame& header, const std::string& name, uint64_t total_floats,
                        uint64_t offset_floats, const float* data, size_t count) {
  const size_t bytes = count * sizeof(float);
  // The floats go in as an external segment when they are word-aligned (a
  // whole model's buffer cut at even offsets always is), so they are copied
  // once, into the output; otherwise into the message's first segment.
  const bool external = bytes > 0 && bytes % sizeof(capnp::word) == 0 &&
                        reinterpret_cast<uintptr_t>(data) % alignof(capnp::word) == 0;
  capnp::MallocMessageBuilder builder(
      static_cast<unsigned>((external ? 0 : bytes / sizeof(capnp::word)) + 256 + name.size() / 8));
  auto root = builder.initRoot<wire::Envelope>();
  root.setProtocolVersion(msg::protocol_version);
  root.setJobId(job_id);
  root.setSender(sender);
  root.setSentAtNs(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count()));
  auto o = root.initBody().initTensorFrame();
  o.setKind(static_cast<wire::TensorKind>(header.kind));
  o.setVersion(header.version);
  o.setStep(header.step);
  o.setTaskId(header.task_id);
  o.setFrameIndex(header.frame_index);
  o.setFrameCount(header.frame_count);
  o.setTotalBytes(header.total_bytes);
  o.setMicroBatch(header.micro_batch);
  auto slice = o.initSlices(1)[0];
  slice.setName(name);
  slice.setDtype(wire::DType::F32);
  slice.initShape(1).set(0, total_floats);
  slice.setOffsetBytes(offset_floats * sizeof(float));
  if (external) {
    slice.adoptData(builder.getOrphanage().referenceExternalData(
        capnp::Data::Reader(reinterpret_cast<const kj::byte*>(data), bytes)));
  } else {
    auto d = slice.initData(static_cast<unsigned>(bytes));
    if (bytes)
      std::memcpy(d.begin(), data, bytes);
  }
  return flat_bytes(builder);
}

Result<FlatFrameView> decode_flat_frame(const uint8_t* data, size_t size,
                                        const DecodeLimits& limits) {
  return read_envelope<FlatFrameView>(
      data, size, limits, true, [](wire::Envelope::Reader root) -> Result<FlatFrameView> {
        auto body = root.getBody();
        if (body.which() != wire::Envelope::Body::TENSOR_FRAME)
          return make_error(Errc::invalid_argument, "not a tensor frame");
        auto r = body.getTensorFrame();
        if (r.getSlices().size() != 1)
          return make_error(Errc::malformed_message, "flat tensor frame with " +
                                                         std::to_string(r.getSlices().size()) +
                                                         " slices (expected 1)");
        auto s = r.getSlices()[0];
        FlatFrameView v;
        v.sender = text(root.getSender());
        v.job_id = text(root.getJobId());
        v.header.kind = static_cast<TensorKind>(r.getKind());
        if (static_cast<uint16_t>(r.getKind()) > static_cast<uint16_t>(TensorKind::activations))
          return make_error(Errc::malformed_message, "tensorFrame.kind is unknown");
        v.header.version = r.getVersion();
        v.header.step = r.getStep();
        v.header.task_id = r.getTaskId();
        v.header.frame_index = r.getFrameIndex();
        v.header.frame_count = r.getFrameCount();
        v.header.total_bytes = r.getTotalBytes();
        v.header.micro_batch = r.getMicroBatch();
        if (v.header.frame_count == 0 || v.header.frame_index >= v.header.frame_count)
          return make_error(Errc::malformed_message,
                            "tensorFrame: frame " + std::to_string(v.header.frame_index) + " of " +
                                std::to_string(v.header.frame_count));
        v.name = text(s.getName());
        if (v.name.empty())
          return make_error(Errc::missing_field, "tensorFrame.slices[0].name is missing");
        if (s.getDtype() != wire::DType::F32 || s.getShape().size() != 1)
          return make_error(Errc::malformed_message,
                            "tensorFrame.slices[0] (" + v.name + ") is not a 1-D f32 tensor");
        v.total_floats = s.getShape()[0];
        const uint64_t off = s.getOffsetBytes();
        auto d = s.getData();
        if (off % sizeof(float) != 0 || d.size() % sizeof(float) != 0 ||
            v.total_floats > (uint64_t{1} << 40) || off / sizeof(float) > v.total_floats ||
            d.size() / sizeof(float) > v.total_floats - off / sizeof(float))
          return make_error(Errc::malformed_message,
                            "tensorFrame.slices[0] (" + v.name + "): slice [" +
                                std::to_string(off) + ", +" + std::to_string(d.size()) +
                                ") does not fit a tensor of " + std::to_string(v.total_floats) +
                                " floats");
        v.offset_floats = off / sizeof(float);
        v.count = d.size() / sizeof(float);
        if (reinterpret_cast<uintptr_t>(d.begin()) % alignof(float) != 0)
          return make_error(Errc::malformed_message, "tensor data is not float-aligned");
        v.data = reinterpret_cast<const float*>(d.begin());
        return v;
      });
}

// ---- manifests on disk --------------------------------------------------------

std::vector<uint8_t> encode_manifest(const DatasetManifest& m) {
  capnp::MallocMessageBuilder builder(static_cast<unsigned>(m.chunk_hashes.size() * 5 + 256));
  write_manifest(builder.initRoot<wire::DatasetManifest>(), m);
  auto flat = capnp::messageToFlatArray(builder);
  auto bytes = flat.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

Result<DatasetManifest> decode_manifest(const uint8_t* data, size_t size) {
  if (size < sizeof(capnp::word) || size % sizeof(capnp::word) != 0)
    return make_error(Errc::malformed_message, "manifest of " + std::to_string(size) +
                                                   " bytes is not a whole number of words");
  auto words = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
  std::memcpy(words.begin(), data, size);
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size() * 2 + 1024;
    capnp::FlatArrayMessageReader reader(words, options);
    return read_manifest(reader.getRoot<wire::DatasetManifest>(), "manifest");
  } catch (const DecodeFailure& f) {
    return make_error(f.code, f.message);
  } catch (const kj::Exception& e) {
    return make_error(Errc::malformed_message,
                      std::string("invalid manifest: ") + e.getDescription().cStr());
  }
}

// ---- tensor frames ----------------------------------------------------------

std::vector<TensorFrame> split_tensors(const std::vector<Tensor>& tensors,
                                       const TensorFrame& header, size_t max_frame_bytes) {
  if (max_frame_bytes == 0)
    max_frame_bytes = default_frame_bytes;
  uint64_t total = 0;
  for (const auto& t : tensors)
    total += t.data.size();
  std::vector<TensorFrame> frames;
  auto new_frame = [&] {
    TensorFrame f;
    f.kind = header.kind;
    f.version = header.version;
    f.step = header.step;
    f.task_id = header.task_id;
    f.total_bytes = total;
    frames.push_back(std::move(f));
  };
  new_frame();
  size_t room = max_frame_bytes;
  for (const auto& t : tensors) {
    const size_t esz = dtype_size(t.dtype);
    size_t off = 0;
    do {
      if (room < esz) {
        new_frame();
        room = max_frame_bytes;
      }
      size_t take = std::min(t.data.size() - off, room);
      take -= take % esz;
      TensorSlice s;
      s.name = t.name;
      s.dtype = t.dtype;
      s.shape = t.shape;
      s.offset_bytes = off;
      s.data.assign(t.data.begin() + static_cast<ptrdiff_t>(off),
                    t.data.begin() + static_cast<ptrdiff_t>(off + take));
      frames.back().slices.push_back(std::move(s));
      off += take;
      room -= take;
    } while (off < t.data.size());
  }
  for (uint32_t i = 0; i < frames.size(); ++i) {
    frames[i].frame_index = i;
    frames[i].frame_count = static_cast<uint32_t>(frames.size());
  }
  return frames;
}

Status FrameAssembler::add(TensorFrame frame) {
  if (!header_) {
    header_ = frame;
    header_->slices.clear();
    seen_.assign(frame.frame_count, false);
  }
  const auto& h = *header_;
  if (frame.kind != h.kind || frame.version != h.version || frame.step != h.step ||
      frame.task_id != h.task_id || frame.frame_count != h.frame_count ||
      frame.total_bytes != h.total_bytes)
    return make_error(Errc::malformed_message,
                      "frame " + std::to_string(frame.frame_index) + " belongs to another set");
  if (frame.frame_index >= seen_.size())
    return make_error(Errc::malformed_message,
                      "frame index " + std::to_string(frame.frame_index) + " out of range");
  if (seen_[frame.frame_index])
    return make_error(Errc::malformed_message,
                      "duplicate frame " + std::to_string(frame.frame_index));
  // Check every slice before applying any, so a bad frame changes nothing.
  for (const auto& s : frame.slices) {
    auto bytes = tensor_bytes(s.dtype, s.shape);
    if (!bytes || s.offset_bytes > *bytes || s.data.size() > *bytes - s.offset_bytes)
      return make_error(Errc::malformed_message, "slice of " + s.name + " exceeds its tensor");
    auto it = tensors_.find(s.name);
    if (it != tensors_.end() &&
        (it->second.tensor.dtype != s.dtype || it->second.tensor.shape != s.shape))
      return make_error(Errc::malformed_message,
                        "slices of " + s.name + " disagree on dtype or shape");
  }
  seen_[frame.frame_index] = true;
  ++frames_seen_;
  for (auto& s : frame.slices) {
    auto it = tensors_.find(s.name);
    if (it == tensors_.end()) {
      Partial p;
      p.tensor.name = s.name;
      p.tensor.dtype = s.dtype;
      p.tensor.shape = s.shape;
      p.tensor.data.resize(*tensor_bytes(s.dtype, s.shape));
      it = tensors_.emplace(s.name, std::move(p)).first;
      order_.push_back(s.name);
    }
    if (!s.data.empty()) // an empty tensor has no buffer to copy into
      std::memcpy(it->second.tensor.data.data() + s.offset_bytes, s.data.data(), s.data.size());
    it->second.filled += s.data.size();
  }
  return Ok{};
}

bool FrameAssembler::complete() const {
  return header_ && frames_seen_ == seen_.size();
}

Result<std::vector<Tensor>> FrameAssembler::take() {
  if (!complete())
    return make_error(Errc::malformed_message,
                      "frame set incomplete: " + std::to_string(frames_seen_) + " of " +
                          std::to_string(seen_.size()) + " frames");
  std::vector<Tensor> out;
  uint64_t total = 0;
  for (const auto& name : order_) {
    auto& p = tensors_.at(name);
    if (p.filled != p.tensor.data.size())
      return make_error(Errc::malformed_message,
                        "tensor " + name + " has " + std::to_string(p.filled) + " of " +
                            std::to_string(p.tensor.data.size()) + " bytes");
    total += p.filled;
    out.push_back(std::move(p.tensor));
  }
  if (total != header_->total_bytes)
    return make_error(Errc::malformed_message, "frame set carries " + std::to_string(total) +
                                                   " bytes, header says " +
                                                   std::to_string(header_->total_bytes));
  *this = FrameAssembler{};
  return out;
}

} // namespace orbitrain::msg
