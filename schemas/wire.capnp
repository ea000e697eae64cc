# The wire format of orbitrain: every message that crosses a process boundary
# (satellite to satellite, ground to satellite) is one Envelope, serialized as
# a flat Cap'n Proto message. CAF carries the bytes; schemas/codec.hpp turns
# them into owned C++ values and back, and validates them.
#
# Rules: document each field after its declaration; never reuse or renumber a
# field; add new fields at the end with the next number; bump protocolVersion
# only for changes an older reader cannot safely ignore.
@0xcc39e2155092bef9;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("orbitrain::wire");

const protocolVersion :UInt16 = 1;
# The version this build speaks. A reader rejects any other.

struct Envelope {
  protocolVersion @0 :UInt16;
  # Version of this schema the sender speaks.
  jobId @1 :Text;
  # Job the message belongs to; empty for node-level traffic such as probes.
  sender @2 :Text;
  # Satellite id of the sender, or "ground" for the ground station. Required.
  sentAtNs @3 :UInt64;
  # Sender's wall clock when it sent, nanoseconds since the Unix epoch.
  body :union {
  # The kind of the message and its content.
    probeRequest @4 :ProbeRequest;
    nodeStatus @5 :NodeStatus;
    loadReport @6 :LoadReport;
    dataChunk @7 :DataChunk;
    tensorFrame @8 :TensorFrame;
    taskAssignment @9 :TaskAssignment;
    taskResult @10 :TaskResult;
    error @11 :ErrorReply;
    chunkQuery @12 :ChunkQuery;
    chunkPresence @13 :ChunkPresence;
    chunkRequest @14 :ChunkRequest;
    chunkAck @15 :ChunkAck;
    manifestPut @16 :DatasetManifest;
    manifestRequest @17 :ManifestRequest;
    manifestList @18 :ManifestList;
    inventoryRequest @19 :InventoryRequest;
    inventory @20 :Inventory;
    jobSpec @21 :JobSpec;
    stepDone @22 :StepDone;
    paramsRequest @23 :ParamsRequest;
  }
}

struct ProbeRequest {
  nonce @0 :UInt64;
  # Echoed in the NodeStatus reply, to pair replies with requests.
}

struct NodeStatus {
  nodeId @0 :Text;
  # Satellite id of the reporting node.
  nonce @1 :UInt64;
  # The nonce of the ProbeRequest this answers.
  uptimeMs @2 :UInt64;
  # Milliseconds since the node started.
  pid @3 :UInt32;
  # Process id of the node on its host.
  actorsRunning @4 :UInt32;
  # Actors alive in the node's actor system (including system actors).
  supervisedActors @5 :UInt32;
  # Actors spawned on the node by others, under its supervisor.
  cpuCount @6 :UInt32;
  # Online CPUs of the host.
  load1 @7 :Float64;
  # 1-minute load average of the host.
  processCpuSeconds @8 :Float64;
  # CPU time the node process has used.
  rssBytes @9 :UInt64;
  # Resident memory of the node process.
  memTotalBytes @10 :UInt64;
  # Memory of the host.
  memAvailableBytes @11 :UInt64;
  # Memory the host can still give out.
  hasOrbit @12 :Bool;
  # Whether the constellation has an orbit model; the fields below are
  # meaningful only then.
  simTimeS @13 :Float64;
  # The node's simulated time, seconds since the epoch.
  latDeg @14 :Float64;
  # Sub-satellite latitude, degrees.
  lonDeg @15 :Float64;
  # Sub-satellite longitude, degrees.
  altKm @16 :Float64;
  # Altitude above the ellipsoid, km.
  sunlit @17 :Bool;
  # In sunlight (false: eclipse).
  stateOfCharge @18 :Float64;
  # Battery charge as a fraction of its capacity.
  inContact @19 :Bool;
  # Some ground station sees the satellite.
  linksUp @20 :UInt32;
  # The satellite's own +Grid inter-satellite links that are up.
  linkHeld @21 :UInt64;
  # Messages the link layer holds now for lack of a route.
  linkDropped @22 :UInt64;
  # Messages the link layer refused because its queue was full.
  linkDelivered @23 :UInt64;
  # Messages the link layer delivered since the node started.
  linkBytes @24 :UInt64;
  # Bytes of those messages.
  minStateOfCharge @25 :Float64;
  # The lowest state of charge since the node started.
  belowFloorS @26 :Float64;
  # Simulated seconds the battery spent below its depth-of-discharge floor.
}

struct LoadReport {
  worker @0 :Text;
  # Satellite id of the reporting worker.
  tasksQueued @1 :UInt32;
  # Tasks assigned to the worker and not yet finished.
  tasksDone @2 :UInt64;
  # Tasks the worker finished in this job.
  stepTimeMs @3 :Float64;
  # Moving average of the time one task takes.
  cpuLoad @4 :Float64;
  # 1-minute load average divided by the CPU count.
  rssBytes @5 :UInt64;
  # Resident memory of the worker's node.
  memAvailableBytes @6 :UInt64;
  # Memory the host can still give out.
  paramVersion @7 :UInt64;
  # Version of the parameters the worker holds.
  hasEnergy @8 :Bool;
  # Whether the fields below come from an orbit model (false without [orbit]).
  stateOfCharge @9 :Float64;
  # Battery charge of the worker's satellite, fraction of the capacity.
  sunlit @10 :Bool;
  # The satellite is in sunlight (false: eclipse).
  inContact @11 :Bool;
  # Some ground station sees the satellite.
  simTimeS @12 :Float64;
  # Simulated time (seconds since the epoch) at which the above was sampled.
  busyMaxMs @13 :Float64;
  # The longest any of the worker's recent tasks (the last 8) kept its
  # compute thread busy, wall milliseconds, the wait there for parameters
  # included; 0 before its first task. The aware scheduler plans with it.
}

struct DataChunk {
  dataset @0 :Text;
  # Name of the dataset the chunk belongs to.
  index @1 :UInt64;
  # Position of the chunk in the dataset, from 0.
  sha256 @2 :Data;
  # SHA-256 of `data`, 32 bytes: the chunk's key in every store.
  data @3 :Data;
  # The chunk's bytes.
  crc32c @4 :UInt32;
  # CRC32C of `data`, written by the encoder and checked by the decoder: a
  # chunk damaged on a link is refused on arrival (the key is checked again
  # by SHA-256 on every read from a store).
}

enum DType {
  f32 @0;
  bf16 @1;
  f16 @2;
  f64 @3;
  i32 @4;
  i64 @5;
  u8 @6;
}

enum TensorKind {
  parameters @0;
  # Model parameters of version `version`.
  gradients @1;
  # Gradients computed on parameters of version `version`.
  optimizerState @2;
  # AdamW moments, for checkpoints.
  activations @3;
  # Activations or their gradients between pipeline stages.
}

struct TensorSlice {
  name @0 :Text;
  # Tensor name, e.g. "transformer.h.0.attn.c_attn.weight".
  dtype @1 :DType;
  # Element type of the whole tensor.
  shape @2 :List(UInt64);
  # Shape of the whole tensor, outermost first.
  offsetBytes @3 :UInt64;
  # Where `data` starts within the whole tensor's bytes.
  data @4 :Data;
  # A contiguous run of the tensor's little-endian bytes.
}

struct TensorFrame {
  kind @0 :TensorKind;
  # What the tensors are.
  version @1 :UInt64;
  # Parameter version the tensors belong to or were computed on.
  step @2 :UInt64;
  # Training step.
  taskId @3 :UInt64;
  # Task the frame answers (gradients), 0 otherwise.
  frameIndex @4 :UInt32;
  # Position of this frame in its set, from 0.
  frameCount @5 :UInt32;
  # Frames in the set; a set is complete when all have arrived.
  totalBytes @6 :UInt64;
  # Bytes of tensor data in the whole set.
  slices @7 :List(TensorSlice);
  # The pieces of tensors this frame carries.
  microBatch @8 :UInt32;
  # Gradients: the micro-batch of the step the task computes (so a parameter
  # server can sum frames in micro-batch order as they arrive).
}

struct TaskAssignment {
  taskId @0 :UInt64;
  # Unique within the job; makes results idempotent.
  step @1 :UInt64;
  # Training step the micro-batch belongs to.
  microBatch @2 :UInt32;
  # Index of the micro-batch within its step.
  paramVersion @3 :UInt64;
  # Parameter version to compute on.
  dataset @4 :Text;
  # Dataset to read the windows from.
  windowStarts @5 :List(UInt64);
  # Byte offsets in the dataset where the micro-batch's windows start.
  windowLength @6 :UInt32;
  # Tokens per window (block_size + 1).
  plannedS @7 :Float64;
  # Simulated seconds the scheduler expects the task to keep the worker's
  # compute thread busy, pessimistically (aware policy with an orbit model;
  # 0: no plan). A worker that has not timed a task of its own yet guards
  # its battery with this.
}

struct TaskResult {
  taskId @0 :UInt64;
  # The task this answers.
  step @1 :UInt64;
  # Its step.
  microBatch @2 :UInt32;
  # Its micro-batch index.
  paramVersion @3 :UInt64;
  # Parameter version the gradients were computed on.
  loss @4 :Float64;
  # Mean cross-entropy of the micro-batch.
  tokens @5 :UInt64;
  # Tokens in the micro-batch.
  computeMs @6 :Float64;
  # Time reading windows, forward and backward took (not counting the wait
  # for parameters still arriving).
  gradientFrames @7 :UInt32;
  # TensorFrames (kind gradients, same taskId) that carry the gradients.
  errorMessage @8 :Text;
  # Non-empty when the task failed; then no gradients follow.
  declined @9 :Bool;
  # The worker did not run the task: its battery could not carry it (aware
  # policy, orbit/guard.hpp). No gradients follow; the scheduler gives the
  # task to another worker and counts no failure.
}

struct ErrorReply {
  code @0 :Text;
  # Stable error name, e.g. "malformed_message".
  message @1 :Text;
  # What went wrong, for a person.
  inReplyTo @2 :Text;
  # Kind of the message that caused the error, or "unknown".
}

struct ChunkQuery {
  hashes @0 :Data;
  # SHA-256 keys of the chunks asked about, 32 bytes each, concatenated.
  verify @1 :Bool;
  # Read and check every held chunk; a corrupt copy is dropped and reported
  # as absent.
}

struct ChunkPresence {
  present @0 :List(Bool);
  # One per hash of the query, in order: whether a valid copy is held.
  corruptDropped @1 :UInt32;
  # Corrupt copies found and dropped while verifying.
}

struct ChunkRequest {
  sha256 @0 :Data;
  # Key of the chunk wanted (32 bytes). The reply is a DataChunk or an
  # ErrorReply (not_found, corrupt).
}

struct ChunkAck {
  sha256 @0 :Data;
  # Key of the chunk stored (32 bytes).
  stored @1 :Bool;
  # False when a valid copy was already held (nothing written).
}

struct DatasetManifest {
  name @0 :Text;
  # Dataset name, unique within the constellation.
  chunkHashes @1 :Data;
  # SHA-256 of each chunk in dataset order, 32 bytes each, concatenated.
  chunkSizes @2 :List(UInt64);
  # Bytes of each chunk, in the same order.
  totalBytes @3 :UInt64;
  # Sum of chunkSizes.
  sha256 @4 :Data;
  # SHA-256 of the whole dataset (32 bytes).
  vocabulary @5 :Data;
  # Sorted distinct bytes of the dataset: the byte tokenizer's vocabulary.
  createdAtMs @6 :UInt64;
  # When the ingest completed, milliseconds since the Unix epoch.
  chunkSize @7 :UInt32;
  # Chunk size the dataset was cut with (the last chunk may be smaller).
  replicas @8 :UInt32;
  # Copies of each chunk the ingest asked for.
}

struct ManifestRequest {
  name @0 :Text;
  # Dataset wanted; empty for all. The reply is a ManifestList.
}

struct ManifestList {
  manifests @0 :List(DatasetManifest);
  # The manifests the satellite holds (or the one asked for).
}

struct InventoryRequest {
  # Asks for every chunk key a satellite holds; the reply is an Inventory.
}

struct Inventory {
  hashes @0 :Data;
  # SHA-256 keys of the chunks held, 32 bytes each, concatenated.
  sizes @1 :List(UInt64);
  # Bytes of each chunk, in the same order.
}

struct SatelliteAddress {
  id @0 :Text;
  # Satellite id.
  host @1 :Text;
  # Host it is reached at.
  port @2 :UInt16;
  # Its port.
}

struct JobSpec {
  dataset @0 :Text;
  # Dataset to train on; its manifest is on every satellite.
  modelConfig @1 :Text;
  # GPT configuration as JSON (compute/config.hpp), vocab_size included.
  steps @2 :UInt32;
  # Optimizer steps.
  microBatch @3 :UInt32;
  # Sequences per micro-batch (one task).
  microBatchesPerStep @4 :UInt32;
  # Micro-batches whose gradients make one step.
  seed @5 :UInt64;
  # Seed of the initial weights and of the random sampler.
  sampler @6 :Text;
  # "random" or "sequential", as train-local.
  precision @7 :Text;
  # "f32" or "bf16" matmuls.
  threads @8 :UInt32;
  # Compute threads per worker.
  lr @9 :Float32;
  # Peak learning rate.
  minLr @10 :Float32;
  # Learning rate after the cosine decay.
  warmupSteps @11 :Int32;
  # Linear warmup steps.
  decaySteps @12 :Int32;
  # The cosine decay ends here.
  beta1 @13 :Float32;
  # AdamW beta1.
  beta2 @14 :Float32;
  # AdamW beta2.
  eps @15 :Float32;
  # AdamW epsilon.
  weightDecay @16 :Float32;
  # AdamW decoupled weight decay.
  gradClip @17 :Float32;
  # Maximum gradient norm, 0 for none.
  satellites @18 :List(SatelliteAddress);
  # Every satellite of the constellation.
  workers @19 :List(Text);
  # Satellites running a worker, in worker index order.
  scheduler @20 :Text;
  # Satellite running the scheduler.
  parameterServer @21 :Text;
  # Satellite running the parameter server.
  taskTimeoutMs @22 :UInt32;
  # A task not finished in this time is given to another worker.
  startStep @23 :UInt32;
  # First step to run (a resumed job starts at its checkpoint's step).
  checkpointEvery @24 :UInt32;
  # The parameter server checkpoints every this many steps (0: never).
  evalEvery @25 :UInt32;
  # Validation loss every this many steps and after the last (0: only after the last).
  evalBatches @26 :UInt32;
  # Sequential validation batches per evaluation, as train-local.
  mode @27 :Text;
  # "sync" (a step sums all its micro-batches) or "async" (every gradient
  # is a step of its own, applied on arrival when fresh enough).
  staleness @28 :UInt32;
  # Async: the most versions a gradient's parameters may lag the server's.
  schedulerPolicy @29 :Text;
  # "aware" (energy- and contact-aware: never below the depth-of-discharge
  # limit, prefers sunlit satellites close to the parameter server) or
  # "load" (load only). Empty reads as "aware".
}

struct StepDone {
  step @0 :UInt32;
  # The step applied (0-based).
  version @1 :UInt64;
  # Parameter version after it.
  loss @2 :Float64;
  # Mean training loss of its micro-batches.
  tokens @3 :UInt64;
  # Tokens it trained on.
  gradNorm @4 :Float64;
  # Gradient norm before clipping.
  lr @5 :Float32;
  # Learning rate used.
  tasksPerWorker @6 :List(UInt32);
  # Tasks each worker finished in this step, in worker order.
  reassigned @7 :UInt32;
  # Tasks given to another worker (death or timeout) so far in the job.
  valLoss @8 :Float64;
  # Validation loss after this step, when evaluated (see hasValLoss).
  hasValLoss @9 :Bool;
  # Whether valLoss holds a value.
  queueDepth @10 :List(UInt32);
  # Tasks queued on each worker (its latest load report), in worker order.
  taskTimeMs @11 :List(Float64);
  # Each worker's moving average of a task's compute time.
  stragglers @12 :UInt32;
  # Tasks so far in the job that took over three times the usual round trip.
  staleness @13 :UInt32;
  # Async: versions between the gradient's parameters and the server's.
  refused @14 :UInt64;
  # Async: gradients refused so far for being staler than the bound.
  stepMs @15 :Float64;
  # Wall time of the step at the parameter server: from sending the
  # parameters it was computed on to its update done (async: one gradient).
  computeMs @16 :Float64;
  # The longest forward+backward among the step's tasks.
  updateMs @17 :Float64;
  # The parameter server's own work: summing, clipping, AdamW.
  bytesIn @18 :UInt64;
  # Gradient bytes the parameter server received for the step.
  bytesOut @19 :UInt64;
  # Parameter bytes it sent for the step.
  declined @20 :UInt32;
  # Tasks workers declined so far in the job because their battery could
  # not carry them (each given to another worker).
}

struct ParamsRequest {
  # Asks the parameter server to send its current parameters (TensorFrames).
}
