// Implementation of wire_message.hpp.
#include "actors/wire_message.hpp"

#include "schemas/codec.hpp"

#include <chrono>

namespace orbitrain {

namespace {

msg::Envelope envelope(const std::string& sender, msg::Body body, const std::string& job_id) {
  msg::Envelope e;
  e.sender = sender;
  e.job_id = job_id;
  e.sent_at_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  e.body = std::move(body);
  return e;
}

} // namespace

wire make_wire(const std::string& sender, msg::Body body, const std::string& job_id) {
  return wire{msg::encode(envelope(sender, std::move(body), job_id))};
}

wire make_chunk_wire(const std::string& sender, const std::string& dataset, uint64_t index,
                     const msg::Hash& sha256, msg::ByteView data, const std::string& job_id) {
  // encode_chunk fails only for a chunk that carries bytes of its own: not this one.
  return wire{
      std::move(msg::encode_chunk(
                    envelope(sender, msg::DataChunk{dataset, index, sha256, {}}, job_id), data))
          .value()};
}

Result<msg::Envelope> open_wire(const wire& w) {
  return msg::decode(w.bytes);
}

Result<msg::Envelope> open_wire_borrowing(const wire& w, msg::ByteView& chunk_data) {
  return msg::decode_borrowing(w.bytes.data(), w.bytes.size(), chunk_data);
}

} // namespace orbitrain
