// Implementation of ground.hpp.
#include "actors/ground.hpp"

#include "actors/runtime.hpp"
#include "actors/wire_message.hpp"

#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <future>

namespace orbitrain {

namespace {

using clock = std::chrono::steady_clock;

std::chrono::milliseconds left(clock::time_point deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return d.count() > 1 ? d : std::chrono::milliseconds(1);
}

Error from_caf(caf::actor_system& sys, const caf::error& e, const std::string& what) {
  Errc code = e == caf::sec::request_timeout ? Errc::timeout : Errc::unreachable;
  return make_error(code, what + ": " + sys.render(e));
}

} // namespace

GroundStation::GroundStation(const Constellation& c)
    : constellation_(c), cfg_(make_caf_config(c, SystemRole::ground)),
      sys_(std::make_unique<caf::actor_system>(*cfg_)) {}

GroundStation::~GroundStation() = default;

caf::actor_system& GroundStation::system() {
  return *sys_;
}

Result<caf::actor> GroundStation::spawn_on(const SatelliteConfig& sat, const std::string& type,
                                           std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  caf::scoped_actor self{*sys_};
  auto mm = sys_->middleman().actor_handle();
  std::optional<Error> err;
  caf::node_id nid;
  self->request(mm, timeout, caf::connect_atom_v, sat.host, sat.port)
      .receive([&](caf::node_id& n, caf::strong_actor_ptr&,
                   std::set<std::string>&) { nid = std::move(n); },
               [&](caf::error& e) {
                 err = from_caf(*sys_, e, "cannot connect to " + sat.id + " at " + sat.address());
               });
  if (err)
    return *err;
  caf::actor spawned;
  self->request(mm, left(deadline), caf::spawn_atom_v, nid, type, caf::make_message(),
                std::set<std::string>{})
      .receive(
          [&](caf::strong_actor_ptr& p) {
            spawned = caf::actor_cast<caf::actor>(p);
            if (!spawned)
              err = make_error(Errc::unreachable, sat.id + " returned no actor for " + type);
          },
          [&](caf::error& e) {
            err = from_caf(*sys_, e, "cannot spawn '" + type + "' on " + sat.id);
          });
  if (err)
    return *err;
  return spawned;
}

std::vector<Result<caf::actor>> GroundStation::spawn_on_all(const std::string& type,
                                                            std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  std::vector<std::future<Result<caf::actor>>> futures;
  for (const auto& sat : constellation_.satellites) {
    auto promise = std::make_shared<std::promise<Result<caf::actor>>>();
    futures.push_back(promise->get_future());
    sys_->spawn([=](caf::event_based_actor* self) {
      auto& sys = self->home_system();
      auto mm = sys.middleman().actor_handle();
      auto fail = [=, &sys](const std::string& what, const caf::error& e) {
        promise->set_value(from_caf(sys, e, what));
        self->quit();
      };
      self->request(mm, left(deadline), caf::connect_atom_v, sat.host, sat.port)
          .then(
              [=](caf::node_id& nid, caf::strong_actor_ptr&, std::set<std::string>&) {
                self->request(mm, left(deadline), caf::spawn_atom_v, nid, type, caf::make_message(),
                              std::set<std::string>{})
                    .then(
                        [=](caf::strong_actor_ptr& ptr) {
                          auto a = caf::actor_cast<caf::actor>(ptr);
                          if (a)
                            promise->set_value(a);
                          else
                            promise->set_value(make_error(
                                Errc::unreachable, sat.id + " returned no actor for " + type));
                          self->quit();
                        },
                        [=](caf::error& e) {
                          fail("cannot spawn '" + type + "' on " + sat.id, e);
                        });
              },
              [=](caf::error& e) {
                fail("cannot connect to " + sat.id + " at " + sat.address(), e);
              });
    });
  }
  std::vector<Result<caf::actor>> out;
  for (size_t i = 0; i < futures.size(); ++i) {
    if (futures[i].wait_until(deadline + std::chrono::milliseconds(250)) ==
        std::future_status::ready)
      out.push_back(futures[i].get());
    else
      out.push_back(make_error(Errc::timeout, constellation_.satellites[i].id +
                                                  " did not answer within " +
                                                  std::to_string(timeout.count()) + " ms"));
  }
  return out;
}

Result<msg::Envelope> GroundStation::ask_raw(const caf::actor& actor, std::vector<uint8_t> bytes,
                                             std::chrono::milliseconds timeout) {
  caf::scoped_actor self{*sys_};
  std::optional<Result<msg::Envelope>> out;
  self->request(actor, timeout, wire{std::move(bytes)})
      .receive([&](wire& reply) { out = open_wire(reply); },
               [&](caf::error& e) { out = from_caf(*sys_, e, "no reply"); });
  return std::move(*out);
}

Result<msg::Envelope> GroundStation::ask(const caf::actor& actor, msg::Body body,
                                         std::chrono::milliseconds timeout) {
  return ask_raw(actor, make_wire("ground", std::move(body)).bytes, timeout);
}

std::vector<SatelliteProbe> GroundStation::probe_all(std::chrono::milliseconds timeout) {
  const auto start = clock::now();
  const auto deadline = start + timeout;
  std::vector<std::future<SatelliteProbe>> futures;
  uint64_t nonce = static_cast<uint64_t>(start.time_since_epoch().count());
  for (const auto& sat : constellation_.satellites) {
    auto promise = std::make_shared<std::promise<SatelliteProbe>>();
    futures.push_back(promise->get_future());
    SatelliteProbe base;
    base.id = sat.id;
    base.address = sat.address();
    ++nonce;
    sys_->spawn([=](caf::event_based_actor* self) {
      auto& sys = self->home_system();
      auto mm = sys.middleman().actor_handle();
      auto fail = [=, &sys](const std::string& what, const caf::error& e) {
        SatelliteProbe p = base;
        p.error = what + ": " + sys.render(e);
        promise->set_value(std::move(p));
        self->quit();
      };
      self->request(mm, left(deadline), caf::connect_atom_v, sat.host, sat.port)
          .then(
              [=](caf::node_id& nid, caf::strong_actor_ptr&, std::set<std::string>&) {
                self->request(mm, left(deadline), caf::spawn_atom_v, nid, std::string("probe"),
                              caf::make_message(), std::set<std::string>{})
                    .then(
                        [=](caf::strong_actor_ptr& ptr) {
                          auto probe = caf::actor_cast<caf::actor>(ptr);
                          self->request(probe, left(deadline),
                                        make_wire("ground", msg::ProbeRequest{nonce}))
                              .then(
                                  [=](wire& reply) {
                                    SatelliteProbe p = base;
                                    auto env = open_wire(reply);
                                    auto* st =
                                        env ? std::get_if<msg::NodeStatus>(&env->body) : nullptr;
                                    if (!env) {
                                      p.error = "bad probe reply: " + env.error().message;
                                    } else if (!st || st->nonce != nonce) {
                                      p.error = std::string("unexpected probe reply: ") +
                                                msg::kind_name(env->body);
                                    } else {
                                      p.up = true;
                                      p.status = *st;
                                      p.round_trip_ms = std::chrono::duration<double, std::milli>(
                                                            clock::now() - start)
                                                            .count();
                                    }
                                    // The probe has done its work.
                                    self->send_exit(probe, caf::exit_reason::user_shutdown);
                                    promise->set_value(std::move(p));
                                    self->quit();
                                  },
                                  [=](caf::error& e) { fail("probe did not answer", e); });
                        },
                        [=](caf::error& e) { fail("cannot spawn a probe", e); });
              },
              [=](caf::error& e) { fail("cannot connect", e); });
    });
  }
  std::vector<SatelliteProbe> out;
  for (size_t i = 0; i < futures.size(); ++i) {
    const auto& sat = constellation_.satellites[i];
    if (futures[i].wait_until(deadline + std::chrono::milliseconds(250)) ==
        std::future_status::ready) {
      out.push_back(futures[i].get());
    } else {
      SatelliteProbe p;
      p.id = sat.id;
      p.address = sat.address();
      p.error = "no answer within " + std::to_string(timeout.count()) + " ms";
      out.push_back(std::move(p));
    }
  }
  return out;
}

} // namespace orbitrain
