// What the three job actors (job_worker.cpp, job_ps.cpp, job_scheduler.cpp)
// share: set-up (connecting to satellites and spawning there), reading
// messages, the job's spec and clock, and the parameter frame format.
// Internal to actors/; the actors themselves are declared in job_actors.hpp.
#pragma once

#include "actors/link_layer.hpp"
#include "actors/wire_message.hpp"
#include "compute/optimizer.hpp"
#include "orbit/clock.hpp"
#include "schemas/messages.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace orbitrain::job {

namespace cp = compute;

/// How long connecting to a satellite or spawning there may take.
inline constexpr auto setup_timeout = std::chrono::seconds(20);

/// Simulated time for the workers' guard and the scheduler's energy rule.
const orbit::SystemWallClock& wall_clock();

/// This node's satellite id.
std::string me(caf::event_based_actor* self);

/// The job's satellites other than this node's, in the spec's order.
std::vector<std::string> other_satellites(caf::event_based_actor* self, const msg::JobSpec& spec);

/// Connects `self`'s node to each satellite in `ids` (direct BASP
/// connections: handles to actors there are then usable) and, when `spawn`
/// is not empty, spawns an actor of that type on each. Calls `done` once with
/// an error text or the spawned actors (in the order of `ids`).
void connect_all(caf::event_based_actor* self, const msg::JobSpec& spec,
                 const std::vector<std::string>& ids, const std::string& spawn,
                 std::function<void(std::string, std::vector<caf::actor>)> done);

/// The envelope in `w`, or nullopt after logging that `who` got a malformed
/// message (a node survives bad input).
std::optional<msg::Envelope> open_or_warn(const wire& w, const char* who);

/// A job spec and its job id from a set-up message.
struct SpecIn {
  msg::JobSpec spec;
  std::string job;
};
std::optional<SpecIn> read_spec(const wire& w);
/// The answer to a set-up message whose spec read_spec() cannot read.
wire bad_spec_reply(caf::event_based_actor* self);

cp::LrSchedule schedule_of(const msg::JobSpec& s);

/// The store actors connect_all() spawned on satellites `ids` (in its
/// order), with their satellites, for fetch_chunk(). They end when `self`
/// ends.
std::vector<PeerStore> adopt_peer_stores(caf::event_based_actor* self,
                                         const std::vector<std::string>& ids,
                                         const std::vector<caf::actor>& stores);

/// Parameters [begin, end) of the n-float flat tensor `params` as one frame
/// (frames are [k*frame_floats, ...)).
wire param_frame(const std::string& sender, const std::string& job, uint64_t version, uint64_t step,
                 const float* params, size_t n, size_t begin, size_t end);

} // namespace orbitrain::job
