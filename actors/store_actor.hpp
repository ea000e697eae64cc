// A satellite's storage service and the actor through which others reach it.
//
// store_service (one per node, spawned detached because RocksDB calls block;
//   registered as "store"): owns the node's Store and answers envelopes:
//     dataChunk        -> chunkAck        (verified against its key, stored once)
//     chunkQuery       -> chunkPresence   (optionally verifying, dropping corrupt copies)
//     chunkRequest     -> dataChunk       (verified) or error (not_found, corrupt)
//     manifestPut      -> manifestList    (the stored manifest, as acknowledgement)
//     manifestRequest  -> manifestList
//     inventoryRequest -> inventory
//   Anything else, or bytes that are no valid message, gets an error reply and
//   a log line naming the sender's node and the message kind.
// store ("store", remotely spawnable): joins the node's supervisor and
//   passes every message to the store_service and its reply back (the
//   service never talks to remote actors itself; see store_actor.cpp): a
//   request gets a response; a message that came through another
//   satellite's link layer (fetch_chunk, actors/link_layer.hpp) gets its
//   reply through this node's link layer.
#pragma once

#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <memory>

namespace orbitrain {

class Store;

caf::behavior store_service_actor(caf::event_based_actor* self, std::shared_ptr<Store> store);

caf::behavior store_actor(caf::event_based_actor* self);

/// Registers the node's store service (for store_actor to find).
void register_store_service(caf::actor_system& sys, const caf::actor& service);

} // namespace orbitrain
