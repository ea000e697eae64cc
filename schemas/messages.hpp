// Owned C++ value types of the messages in wire.capnp, one struct per
// Cap'n Proto struct, field for field. Actors build and read these; only
// codec.cpp touches the generated Cap'n Proto classes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace orbitrain::msg {

/// The protocol version this build speaks (wire.capnp protocolVersion).
inline constexpr uint16_t protocol_version = 1;

struct ProbeRequest {
  uint64_t nonce = 0;
};

struct NodeStatus {
  std::string node_id;
  uint64_t nonce = 0;
  uint64_t uptime_ms = 0;
  uint32_t pid = 0;
  uint32_t actors_running = 0;
  uint32_t supervised_actors = 0;
  uint32_t cpu_count = 0;
  double load1 = 0;
  double process_cpu_seconds = 0;
  uint64_t rss_bytes = 0;
  uint64_t mem_total_bytes = 0;
  uint64_t mem_available_bytes = 0;
  // With an orbit model (has_orbit):
  bool has_orbit = false;
  double sim_time_s = 0;
  double lat_deg = 0, lon_deg = 0, alt_km = 0;
  bool sunlit = true;
  double state_of_charge = 1;
  bool in_contact = true;
  uint32_t links_up = 0;
  uint64_t link_held = 0, link_dropped = 0, link_delivered = 0, link_bytes = 0;
  double min_state_of_charge = 1, below_floor_s = 0;
};

struct LoadReport {
  std::string worker;
  uint32_t tasks_queued = 0;
  uint64_t tasks_done = 0;
  double step_time_ms = 0;
  double cpu_load = 0;
  uint64_t rss_bytes = 0;
  uint64_t mem_available_bytes = 0;
  uint64_t param_version = 0;
  // With an orbit model (has_energy):
  bool has_energy = false;
  double state_of_charge = 1;
  bool sunlit = true;
  bool in_contact = true;
  double sim_time_s = 0;
  double busy_max_ms = 0; // longest recent compute-thread occupancy of a task
};

struct DataChunk {
  std::string dataset;
  uint64_t index = 0;
  std::array<uint8_t, 32> sha256{};
  std::vector<uint8_t> data;
};

enum class DType : uint8_t { f32, bf16, f16, f64, i32, i64, u8 };

/// Bytes per element of `t`.
size_t dtype_size(DType t);
const char* to_string(DType t);

enum class TensorKind : uint8_t { parameters, gradients, optimizer_state, activations };

struct TensorSlice {
  std::string name;
  DType dtype = DType::f32;
  std::vector<uint64_t> shape;
  uint64_t offset_bytes = 0;
  std::vector<uint8_t> data;
};

struct TensorFrame {
  TensorKind kind = TensorKind::parameters;
  uint64_t version = 0;
  uint64_t step = 0;
  uint64_t task_id = 0;
  uint32_t frame_index = 0;
  uint32_t frame_count = 1;
  uint64_t total_bytes = 0;
  std::vector<TensorSlice> slices;
  uint32_t micro_batch = 0; // gradients: the task's micro-batch
};

struct TaskAssignment {
  uint64_t task_id = 0;
  uint64_t step = 0;
  uint32_t micro_batch = 0;
  uint64_t param_version = 0;
  std::string dataset;
  std::vector<uint64_t> window_starts;
  uint32_t window_length = 0;
  double planned_s = 0; // simulated seconds the scheduler planned (0: none)
};

struct TaskResult {
  uint64_t task_id = 0;
  uint64_t step = 0;
  uint32_t micro_batch = 0;
  uint64_t param_version = 0;
  double loss = 0;
  uint64_t tokens = 0;
  double compute_ms = 0;
  uint32_t gradient_frames = 0;
  std::string error_message;
  bool declined = false; // not run: the worker's battery could not carry it
};

struct ErrorReply {
  std::string code;
  std::string message;
  std::string in_reply_to;
};

using Hash = std::array<uint8_t, 32>;

struct ChunkQuery {
  std::vector<Hash> hashes;
  bool verify = false;
};

struct ChunkPresence {
  std::vector<bool> present;
  uint32_t corrupt_dropped = 0;
};

struct ChunkRequest {
  Hash sha256{};
};

struct ChunkAck {
  Hash sha256{};
  bool stored = false;
};

struct DatasetManifest {
  std::string name;
  std::vector<Hash> chunk_hashes;
  std::vector<uint64_t> chunk_sizes;
  uint64_t total_bytes = 0;
  Hash sha256{};
  std::vector<uint8_t> vocabulary;
  uint64_t created_at_ms = 0;
  uint32_t chunk_size = 0;
  uint32_t replicas = 0;

  bool operator==(const DatasetManifest& o) const {
    return name == o.name && chunk_hashes == o.chunk_hashes && chunk_sizes == o.chunk_sizes &&
           total_bytes == o.total_bytes && sha256 == o.sha256 && vocabulary == o.vocabulary &&
           created_at_ms == o.created_at_ms && chunk_size == o.chunk_size && replicas == o.replicas;
  }
};

struct ManifestRequest {
  std::string name;
};

struct ManifestList {
  std::vector<DatasetManifest> manifests;
};

struct InventoryRequest {};

struct Inventory {
  std::vector<Hash> hashes;
  std::vector<uint64_t> sizes;
};

struct SatelliteAddress {
  std::string id;
  std::string host;
  uint16_t port = 0;
};

/// A training job's settings (see wire.capnp JobSpec).
struct JobSpec {
  std::string dataset;
  std::string model_config; // JSON
  uint32_t steps = 0;
  uint32_t micro_batch = 0;
  uint32_t micro_batches_per_step = 0;
  uint64_t seed = 0;
  std::string sampler = "random";
  std::string precision = "f32";
  uint32_t threads = 1;
  float lr = 1e-3f, min_lr = 1e-4f;
  int32_t warmup_steps = 100, decay_steps = 2000;
  float beta1 = 0.9f, beta2 = 0.99f, eps = 1e-8f, weight_decay = 0.1f, grad_clip = 1.f;
  std::vector<SatelliteAddress> satellites;
  std::vector<std::string> workers;
  std::string scheduler;
  std::string parameter_server;
  uint32_t task_timeout_ms = 60000;
  uint32_t start_step = 0;
  uint32_t checkpoint_every = 0;
  uint32_t eval_every = 0;
  uint32_t eval_batches = 20;
  std::string mode = "sync";              // or "async"
  uint32_t staleness = 4;                 // async only
  std::string scheduler_policy = "aware"; // or "load"
};

struct StepDone {
  uint32_t step = 0;
  uint64_t version = 0;
  double loss = 0;
  uint64_t tokens = 0;
  double grad_norm = 0;
  float lr = 0;
  std::vector<uint32_t> tasks_per_worker;
  uint32_t reassigned = 0;
  std::optional<double> val_loss;
  std::vector<uint32_t> queue_depth;
  std::vector<double> task_time_ms;
  uint32_t stragglers = 0;
  uint32_t staleness = 0; // async only
  uint64_t refused = 0;   // async only
  double step_ms = 0, compute_ms = 0, update_ms = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  uint32_t declined = 0; // tasks declined so far in the job
};

struct ParamsRequest {};

using Body = std::variant<ProbeRequest, NodeStatus, LoadReport, DataChunk, TensorFrame,
                          TaskAssignment, TaskResult, ErrorReply, ChunkQuery, ChunkPresence,
                          ChunkRequest, ChunkAck, DatasetManifest, ManifestRequest, ManifestList,
                          InventoryRequest, Inventory, JobSpec, StepDone, ParamsRequest>;

/// Name of the message kind held by `body`, e.g. "dataChunk" (as in wire.capnp).
const char* kind_name(const Body& body);

struct Envelope {
  uint16_t protocol_version = msg::protocol_version;
  std::string job_id;
  std::string sender;
  uint64_t sent_at_ns = 0;
  Body body;
};

} // namespace orbitrain::msg
