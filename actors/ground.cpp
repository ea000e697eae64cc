// Implementation of ground.hpp.
#include "actors/ground.hpp"

#include "actors/runtime.hpp"
#include "actors/wire_message.hpp"
#include "orbit/clock.hpp"
#include "orbit/model.hpp"

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <future>
#include <thread>

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

const orbit::SystemWallClock ground_wall;

GroundStation::GroundStation(const Constellation& c)
    : constellation_(c), cfg_(make_caf_config(c, SystemRole::ground)),
      sys_(std::make_unique<caf::actor_system>(*cfg_)) {
  if (c.orbit && !c.ground_stations.empty())
    (void)use_ground_station(c.ground_stations.front().name);
}

Result<bool> GroundStation::use_ground_station(const std::string& name) {
  std::lock_guard<std::mutex> lock(link_m_);
  if (name == "none" || !constellation_.orbit) {
    model_.reset();
    station_ = -1;
    return true;
  }
  auto model = std::make_unique<orbit::ConstellationModel>(orbit::model_spec(constellation_));
  const int g = model->station_index(name);
  if (g < 0) {
    std::string names;
    for (const auto& s : constellation_.ground_stations)
      names += (names.empty() ? "" : ", ") + s.name;
    return make_error(Errc::invalid_argument,
                      "no ground station '" + name + "' in " + constellation_.file +
                          " (stations: " + (names.empty() ? "none" : names) + ")");
  }
  const auto& o = *constellation_.orbit;
  clock_ = std::make_unique<orbit::SimClock>(ground_wall, o.start(), o.time_scale, o.epoch_unix);
  model_ = std::move(model);
  station_ = g;
  return true;
}

std::string GroundStation::ground_station() const {
  return station_ >= 0 ? constellation_.ground_stations[static_cast<size_t>(station_)].name
                       : std::string();
}

std::optional<double> GroundStation::link_wait(const std::string& id, uint64_t bytes,
                                               std::chrono::milliseconds horizon) {
  std::lock_guard<std::mutex> lock(link_m_);
  const auto* sat = constellation_.find(id);
  if (!model_ || !sat || sat->slot < 0)
    return 0.0;
  const double scale = clock_->time_scale();
  const double t0 = clock_->now();
  const double span = std::chrono::duration<double>(horizon).count() * scale; // simulated
  // Step through simulated time until the station has a route to the
  // satellite, then refine the opening to 10 ms by bisection.
  const double step = std::clamp(span / 400, 0.5, 10.0);
  auto route_at = [&](double t) {
    model_->update(t);
    return model_->ground_route(station_, sat->slot);
  };
  double lo = -1;
  for (double dt = 0; dt <= span; dt += step) {
    if (route_at(t0 + dt)) {
      if (dt == 0)
        return model_->delay(*route_at(t0), bytes) / scale;
      lo = dt - step;
      double hi = dt;
      while (hi - lo > 0.01 * scale) {
        const double mid = (lo + hi) / 2;
        (route_at(t0 + mid) ? hi : lo) = mid;
      }
      return (hi + model_->delay(*route_at(t0 + hi), bytes)) / scale;
    }
  }
  return std::nullopt;
}

Result<bool> GroundStation::hold(const std::string& id, uint64_t bytes,
                                 std::chrono::milliseconds horizon) {
  auto w = link_wait(id, bytes, horizon);
  if (!w)
    return make_error(Errc::timeout, "out of contact: ground station " + ground_station() +
                                         " has no route to " + id + " within " +
                                         std::to_string(horizon.count()) + " ms");
  if (*w > 0)
    std::this_thread::sleep_for(std::chrono::duration<double>(*w));
  return true;
}

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

Result<msg::Envelope> GroundStation::ask_raw(const caf::actor& actor, msg::Bytes bytes,
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
  const size_t n = constellation_.satellites.size();
  std::vector<std::future<SatelliteProbe>> futures;
  std::vector<std::shared_ptr<std::promise<SatelliteProbe>>> promises;
  for (size_t i = 0; i < n; ++i) {
    promises.push_back(std::make_shared<std::promise<SatelliteProbe>>());
    futures.push_back(promises.back()->get_future());
  }
  // With a ground link, each probe leaves when its satellite can be reached
  // (the earliest first); one out of reach within the timeout is reported.
  std::vector<std::optional<double>> up(n, 0.0);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) {
    order[i] = i;
    up[i] = link_wait(constellation_.satellites[i].id, 64, timeout);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return up[a].value_or(1e300) < up[b].value_or(1e300);
  });
  const uint64_t nonce0 = static_cast<uint64_t>(start.time_since_epoch().count());
  for (size_t i : order) {
    const auto& sat = constellation_.satellites[i];
    auto promise = promises[i];
    SatelliteProbe base;
    base.id = sat.id;
    base.address = sat.address();
    const uint64_t nonce = nonce0 + i + 1;
    if (!up[i]) {
      base.error = "out of contact: ground station " + ground_station() + " has no route to " +
                   sat.id + " within " + std::to_string(timeout.count()) + " ms";
      promise->set_value(std::move(base));
      continue;
    }
    if (*up[i] > 0)
      std::this_thread::sleep_until(start + std::chrono::duration_cast<clock::duration>(
                                                std::chrono::duration<double>(*up[i])));
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
      // The reply's way down (held on arrival).
      if (out.back().up && model_)
        if (auto down = link_wait(sat.id, 256, timeout); down && *down > 0) {
          std::this_thread::sleep_for(std::chrono::duration<double>(*down));
          out.back().round_trip_ms += *down * 1e3;
        }
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
