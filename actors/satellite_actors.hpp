// The actors a satellite runs for itself and lets others spawn on it.
//
// supervisor: one per node, registered as "supervisor". Every actor spawned
//   on the node by others joins it; it monitors and counts them, and when it
//   is told to exit (node shutdown) it tells each of them to exit first, so no
//   remotely spawned actor can hold a node up.
// probe ("probe", remotely spawnable): answers a ProbeRequest envelope with
//   the node's NodeStatus; answers anything else (including bytes that are no
//   valid message) with an ErrorReply and a log line naming the sender node
//   and the message kind; quits after a minute without messages.
#pragma once

#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/fwd.hpp>

namespace orbitrain {

caf::behavior supervisor_actor(caf::event_based_actor* self);

caf::behavior probe_actor(caf::event_based_actor* self);

/// Registers `sup` as the node's supervisor.
void register_supervisor(caf::actor_system& sys, const caf::actor& sup);

/// The node's supervisor (from the actor registry); invalid off a satellite.
caf::actor find_supervisor(caf::actor_system& sys);

/// Makes `self` a supervised member of its node, if the node has a supervisor.
void join_supervisor(caf::event_based_actor* self);

} // namespace orbitrain
