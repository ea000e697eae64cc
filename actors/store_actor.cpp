// Implementation of store_actor.hpp.
#include "actors/store_actor.hpp"

#include "actors/link_layer.hpp"
#include "actors/runtime.hpp"
#include "actors/satellite_actors.hpp"
#include "actors/wire_message.hpp"
#include "core/log.hpp"
#include "storage/store.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/all.hpp>

namespace orbitrain {

namespace {

const caf::atom_value store_key = caf::atom("store");

msg::ErrorReply error_reply(const Error& e, const std::string& kind) {
  return msg::ErrorReply{to_string(e.code), e.message, kind};
}

// Serves one decoded envelope; returns the reply body. A dataChunk's bytes
// are `chunk_data` (still in the received message, never copied here).
msg::Body serve(Store& store, const msg::Envelope& env, msg::ByteView chunk_data) {
  const std::string kind = msg::kind_name(env.body);
  if (auto* chunk = std::get_if<msg::DataChunk>(&env.body)) {
    // Its sender hashed it and the codec checked its CRC32C on arrival: the
    // satellite does not hash it again here (reads do; see KeyCheck).
    auto r =
        store.put_chunk(chunk->sha256, chunk_data.data, chunk_data.size, Store::KeyCheck::vouched);
    if (!r)
      return error_reply(r.error(), kind);
    return msg::ChunkAck{chunk->sha256, *r};
  }
  if (auto* q = std::get_if<msg::ChunkQuery>(&env.body)) {
    msg::ChunkPresence p;
    p.present.reserve(q->hashes.size());
    for (const auto& h : q->hashes) {
      bool dropped = false;
      auto has = store.has_chunk(h, q->verify, &dropped);
      if (!has)
        return error_reply(has.error(), kind);
      if (dropped) {
        ++p.corrupt_dropped;
        log_warn("dropped a corrupt copy of chunk " + short_hex(h));
      }
      p.present.push_back(*has);
    }
    return p;
  }
  // chunkRequest: see serve_chunk_request.
  if (auto* m = std::get_if<msg::DatasetManifest>(&env.body)) {
    auto st = store.put_manifest(*m);
    if (!st)
      return error_reply(st.error(), kind);
    return msg::ManifestList{{*m}};
  }
  if (auto* mr = std::get_if<msg::ManifestRequest>(&env.body)) {
    msg::ManifestList out;
    if (mr->name.empty()) {
      auto all = store.list_manifests();
      if (!all)
        return error_reply(all.error(), kind);
      out.manifests = std::move(*all);
    } else {
      auto one = store.get_manifest(mr->name);
      if (one)
        out.manifests.push_back(std::move(*one));
      else if (one.error().code != Errc::not_found)
        return error_reply(one.error(), kind);
    }
    return out;
  }
  if (std::holds_alternative<msg::InventoryRequest>(env.body)) {
    auto chunks = store.list_chunks();
    if (!chunks)
      return error_reply(chunks.error(), kind);
    msg::Inventory inv;
    for (const auto& c : *chunks) {
      inv.hashes.push_back(c.hash);
      inv.sizes.push_back(c.size);
    }
    return inv;
  }
  log_warn("unexpected " + kind + " message for the store from " + env.sender);
  return msg::ErrorReply{"unexpected_message", "the store does not serve " + kind, kind};
}

// A chunkRequest: the verified bytes go from RocksDB's buffer straight into
// the reply.
wire serve_chunk_request(Store& store, const msg::Envelope& env, const msg::ChunkRequest& req,
                         const std::string& me) {
  std::optional<wire> reply;
  auto st = store.read_chunk(req.sha256, [&](const uint8_t* data, size_t size) {
    reply = make_chunk_wire(me, {}, 0, req.sha256, msg::ByteView{data, size}, env.job_id);
  });
  if (!st) {
    if (st.error().code == Errc::corrupt)
      log_warn(st.error().message);
    return make_wire(me, error_reply(st.error(), msg::kind_name(env.body)), env.job_id);
  }
  return std::move(*reply);
}

} // namespace

caf::behavior store_service_actor(caf::event_based_actor* self, std::shared_ptr<Store> store) {
  const std::string me = node_context(self->home_system()).node_id;
  return {
      [self, store, me](const wire& w) -> wire {
        msg::ByteView chunk_data;
        auto env = open_wire_borrowing(w, chunk_data);
        if (!env) {
          std::string from = "an unknown node";
          if (auto& src = self->current_sender())
            from = to_string(src->node());
          log_warn("malformed message for the store from " + from +
                   " (kind unknown): " + env.error().message);
          return make_wire(me, error_reply(env.error(), "unknown"));
        }
        if (auto* req = std::get_if<msg::ChunkRequest>(&env->body))
          return serve_chunk_request(*store, *env, *req, me);
        return make_wire(me, serve(*store, *env, chunk_data), env->job_id);
      },
  };
}

void register_store_service(caf::actor_system& sys, const caf::actor& service) {
  sys.registry().put(store_key, service);
}

caf::behavior store_actor(caf::event_based_actor* self) {
  join_supervisor(self);
  // The service is looked up per message and its replies come back through
  // this actor. Replies sent by the service itself would make the middleman
  // keep a reference to it for the remote requester, and the actor system
  // would wait for its (detached) thread forever at shutdown.
  const std::string me = node_context(self->home_system()).node_id;
  return {
      [self, me](wire& w) -> caf::result<wire> {
        // A request (the ground, or a peer without an orbit model) is
        // answered as a response. A message that came through a link layer
        // (fetch_chunk) is answered through this node's, to the sender's
        // satellite as its envelope names it.
        if (!self->current_mailbox_element()->mid.is_request()) {
          auto from = caf::actor_cast<caf::actor>(self->current_sender());
          msg::ByteView unused;
          auto env = open_wire_borrowing(w, unused);
          const std::string sat = env ? env->sender : std::string();
          auto service = self->home_system().registry().get<caf::actor>(store_key);
          if (!from)
            return caf::delegated<wire>{};
          if (!service) {
            link_send(self, from, sat,
                      make_wire(me, msg::ErrorReply{"unavailable",
                                                    "the store of " + me + " is shutting down",
                                                    "unknown"}));
            return caf::delegated<wire>{};
          }
          self->request(service, caf::infinite, std::move(w))
              .then(
                  [self, from, sat](wire& reply) { link_send(self, from, sat, std::move(reply)); },
                  [self, from, sat, me](caf::error& e) {
                    link_send(
                        self, from, sat,
                        make_wire(me, msg::ErrorReply{"unavailable", to_string(e), "unknown"}));
                  });
          return caf::delegated<wire>{};
        }
        auto service = self->home_system().registry().get<caf::actor>(store_key);
        if (!service)
          return make_wire(me,
                           msg::ErrorReply{"unavailable",
                                           "the store of " + me + " is shutting down", "unknown"});
        auto rp = self->make_response_promise<wire>();
        self->request(service, caf::infinite, std::move(w))
            .then([rp](wire& reply) mutable { rp.deliver(std::move(reply)); },
                  [rp, me](caf::error& e) mutable {
                    rp.deliver(
                        make_wire(me, msg::ErrorReply{"unavailable", to_string(e), "unknown"}));
                  });
        return rp;
      },
      caf::after(std::chrono::minutes(10)) >> [self] { self->quit(); },
  };
}

} // namespace orbitrain
