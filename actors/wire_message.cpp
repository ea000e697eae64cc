// Implementation of wire_message.hpp.
#include "actors/wire_message.hpp"

#include "schemas/codec.hpp"

#include <chrono>

namespace orbitrain {

wire make_wire(const std::string& sender, msg::Body body, const std::string& job_id) {
  msg::Envelope e;
  e.sender = sender;
  e.job_id = job_id;
  e.sent_at_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  e.body = std::move(body);
  return wire{msg::encode(e)};
}

Result<msg::Envelope> open_wire(const wire& w) {
  return msg::decode(w.bytes);
}

} // namespace orbitrain
