// Implementation of node.hpp.
#include "actors/node.hpp"

#include "actors/link_layer.hpp"
#include "actors/runtime.hpp"
#include "actors/satellite_actors.hpp"
#include "actors/store_actor.hpp"
#include "core/log.hpp"
#include "storage/store.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <csignal>
#include <pthread.h>
#include <unistd.h>

namespace orbitrain {

int run_satellite(const Constellation& c, const std::string& node_id) {
  set_log_origin(node_id);
  const SatelliteConfig* sat = c.find(node_id);
  if (!sat) {
    std::string ids;
    for (const auto& s : c.satellites)
      ids += (ids.empty() ? "" : ", ") + s.id;
    log_error("no satellite '" + node_id + "' in " + c.file + " (satellites: " + ids + ")");
    return 2;
  }
  // Block the stop signals in every thread (CAF's threads inherit the mask);
  // this thread takes them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto cfg = make_caf_config(c, SystemRole::satellite, node_id);
  int signal_number = 0;
  {
    caf::actor_system sys{*cfg};
    auto sup = sys.spawn(supervisor_actor);
    register_supervisor(sys, sup);
    // With an orbit model: the node's orbit service and link layer, before
    // anyone can spawn an actor here.
    caf::actor orbit_service;
    if (cfg->orbit) {
      orbit_service = sys.spawn(orbit_service_actor, cfg->orbit);
      cfg->orbit->service = orbit_service;
    }
    auto port = sys.middleman().open(sat->port, sat->host.c_str(), true);
    if (!port) {
      log_error("cannot listen on " + sat->address() + ": " + sys.render(port.error()));
      caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
      if (orbit_service)
        caf::anon_send_exit(orbit_service, caf::exit_reason::user_shutdown);
      return 2;
    }
    auto store = Store::open(sat->data_dir);
    if (!store) {
      log_error(store.error().message);
      sys.middleman().close(*port);
      caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
      if (orbit_service)
        caf::anon_send_exit(orbit_service, caf::exit_reason::user_shutdown);
      return 2;
    }
    std::shared_ptr<Store> shared_store = std::move(*store);
    cfg->store = shared_store;
    // RocksDB calls block: the store service gets a thread of its own.
    auto store_service = sys.spawn<caf::detached>(store_service_actor, shared_store);
    register_store_service(sys, store_service);
    log_info(std::string(ready_marker) + sat->address() + " (pid " + std::to_string(::getpid()) +
             ", constellation " + c.name + ", store " + sat->data_dir + ")");
    sigwait(&stop_signals, &signal_number);
    log_info(std::string("stopping on ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM"));
    sys.middleman().close(*port);
    sys.registry().erase(caf::atom("supervisor"));
    sys.registry().erase(caf::atom("store"));
    // Stop the supervisor (and with it every actor spawned here by others)
    // and the store service, and wait for them, boundedly.
    {
      caf::scoped_actor stopper{sys};
      stopper->monitor(sup);
      stopper->monitor(store_service);
      caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(store_service, caf::exit_reason::user_shutdown);
      if (orbit_service) {
        stopper->monitor(orbit_service);
        caf::anon_send_exit(orbit_service, caf::exit_reason::user_shutdown);
      }
      for (int i = 0; i < (orbit_service ? 3 : 2); ++i)
        stopper->receive([](caf::down_msg&) {},
                         caf::after(std::chrono::seconds(5)) >>
                             [] { log_warn("an actor did not stop within 5 s"); });
    }

  } // the actor system waits here for every actor to finish
  log_info("stopped");
  return 0;
}

} // namespace orbitrain
