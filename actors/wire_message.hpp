// The one message type that carries orbitrain's Cap'n Proto payloads through
// CAF, and the project's CAF type-id block. Every actor-to-actor message that
// may cross a process boundary is a `wire` holding the bytes of one encoded
// msg::Envelope (schemas/codec.hpp). The bytes go through CAF's binary
// (de)serializers as one raw block: copied once per hop, never re-encoded,
// and on arrival written into a buffer that was not zero-filled first.
#pragma once

#include "core/result.hpp"
#include "schemas/codec.hpp"
#include "schemas/messages.hpp"

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>
#include <caf/serializer.hpp>
#include <caf/type_id.hpp>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace orbitrain {

struct wire {
  msg::Bytes bytes;
};

// The same layout as CAF's own for a byte vector (a sequence of raw bytes),
// but loading does not value-initialise the buffer it is about to overwrite:
// for multi-MiB frames and chunks that zero-fill was a pass over memory per
// message. Other inspectors (to_string) see the bytes as a sequence.
template <class Inspector> typename Inspector::result_type inspect(Inspector& f, wire& x) {
  if constexpr (std::is_same<Inspector, caf::serializer>::value) {
    size_t n = x.bytes.size();
    return caf::error::eval([&] { return f.begin_sequence(n); },
                            [&] { return n > 0 ? f.apply_raw(n, x.bytes.data()) : caf::none; },
                            [&] { return f.end_sequence(); });
  } else if constexpr (std::is_same<Inspector, caf::deserializer>::value) {
    size_t n = 0;
    return caf::error::eval([&] { return f.begin_sequence(n); },
                            [&]() -> caf::error {
                              // A corrupt length must not allocate gigabytes.
                              if (n > msg::DecodeLimits{}.max_message_bytes)
                                return caf::make_error(caf::sec::invalid_argument,
                                                       "orbitrain::wire of " + std::to_string(n) +
                                                           " bytes is over the message limit");
                              x.bytes.resize(n); // no zero-fill: msg::Bytes
                              return n > 0 ? f.apply_raw(n, x.bytes.data()) : caf::none;
                            },
                            [&] { return f.end_sequence(); });
  } else {
    return f(caf::meta::type_name("orbitrain::wire"), x.bytes);
  }
}

/// Encodes `body` from `sender` (job `job_id`) into a wire message.
wire make_wire(const std::string& sender, msg::Body body, const std::string& job_id = {});

/// A dataChunk wire message (dataset, index, key) whose bytes are copied
/// once, from `data`, straight into the message (msg::encode_chunk).
wire make_chunk_wire(const std::string& sender, const std::string& dataset, uint64_t index,
                     const msg::Hash& sha256, msg::ByteView data, const std::string& job_id = {});

/// Decodes a wire message; errors name the problem (see codec.hpp).
Result<msg::Envelope> open_wire(const wire& w);

/// open_wire() leaving a dataChunk's bytes in `w`: `chunk_data` points at
/// them (msg::decode_borrowing); valid while `w` and the envelope live.
Result<msg::Envelope> open_wire_borrowing(const wire& w, msg::ByteView& chunk_data);

} // namespace orbitrain

CAF_BEGIN_TYPE_ID_BLOCK(orbitrain, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(orbitrain, (orbitrain::wire))
CAF_ADD_TYPE_ID(orbitrain, (std::vector<orbitrain::wire>))
CAF_ADD_TYPE_ID(orbitrain, (std::vector<float>))
CAF_END_TYPE_ID_BLOCK(orbitrain)

// Local control messages between a node's own actors.
CAF_ADD_ATOM(orbitrain, orbitrain, join_atom, "join")
CAF_ADD_ATOM(orbitrain, orbitrain, count_atom, "count")
// Training jobs: set-up, start, parameters to a worker's compute thread, a
// finished task from it, the end of a job.
CAF_ADD_ATOM(orbitrain, orbitrain, job_init_atom, "jobinit")
CAF_ADD_ATOM(orbitrain, orbitrain, job_start_atom, "jobstart")
CAF_ADD_ATOM(orbitrain, orbitrain, params_atom, "params")
CAF_ADD_ATOM(orbitrain, orbitrain, task_done_atom, "taskdone")
CAF_ADD_ATOM(orbitrain, orbitrain, job_end_atom, "jobend")
CAF_ADD_ATOM(orbitrain, orbitrain, tick_atom, "tick")
// The link layer (actors/link_layer.hpp).
CAF_ADD_ATOM(orbitrain, orbitrain, link_atom, "link")
CAF_ADD_ATOM(orbitrain, orbitrain, flush_atom, "flush")
CAF_ADD_ATOM(orbitrain, orbitrain, link_down_atom, "linkdown")
CAF_ADD_ATOM(orbitrain, orbitrain, relay_atom, "relay")
CAF_ADD_ATOM(orbitrain, orbitrain, sink_atom, "sink")
CAF_ADD_ATOM(orbitrain, orbitrain, peer_atom, "peer")
CAF_ADD_ATOM(orbitrain, orbitrain, busy_atom, "busy")
CAF_ADD_ATOM(orbitrain, orbitrain, fetch_atom, "fetch")
