// Implementation of runtime.hpp.
#include "actors/runtime.hpp"

#include "actors/job_actors.hpp"
#include "actors/link_layer.hpp"
#include "actors/satellite_actors.hpp"
#include "actors/store_actor.hpp"
#include "actors/wire_message.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>

namespace orbitrain {

std::unique_ptr<orbitrain_config> make_caf_config(const Constellation& c, SystemRole role,
                                                  const std::string& node_id) {
  auto cfg = std::make_unique<orbitrain_config>();
  cfg->load<caf::io::middleman>();
  cfg->add_message_types<caf::id_block::orbitrain>();
  // CAF's own logger and console output stay quiet: orbitrain logs itself.
  cfg->set("logger.file-verbosity", caf::atom("quiet"));
  cfg->set("logger.console-verbosity", caf::atom("quiet"));
  // CAF's work-stealing workers, once out of work, poll their queue 500
  // times with 50 us sleeps before they wait on a condition variable. With
  // several processes sharing a few cores that polling is a context switch
  // every 50 us per idle worker: a quarter of a satellite's CPU time during
  // an ingest went there (perf, 4 satellites on 2 cores). Idle workers wait
  // on the condition variable after the brief aggressive spin instead; an
  // enqueue from outside wakes them at once.
  cfg->set("work-stealing.moderate-poll-attempts", size_t{0});
  if (c.caf.scheduler_threads)
    cfg->set("scheduler.max-threads", static_cast<size_t>(*c.caf.scheduler_threads));
  if (c.caf.heartbeat_interval)
    cfg->set("middleman.heartbeat-interval", caf::timespan{*c.caf.heartbeat_interval});
  if (c.caf.connection_timeout)
    cfg->set("middleman.connection-timeout", caf::timespan{*c.caf.connection_timeout});
  if (role == SystemRole::satellite) {
    cfg->node_id = node_id;
    cfg->add_actor_type("probe", probe_actor);
    cfg->add_actor_type("store", store_actor);
    cfg->add_actor_type("worker", job_worker_actor);
    cfg->add_actor_type("ps", job_ps_actor);
    cfg->add_actor_type("scheduler", job_scheduler_actor);
    cfg->add_actor_type("link_test", link_test_actor);
    if (c.orbit && c.find(node_id))
      cfg->orbit = std::make_shared<NodeOrbit>(c, node_id);
  }
  return cfg;
}

const orbitrain_config& node_context(caf::actor_system& sys) {
  return static_cast<const orbitrain_config&>(sys.config());
}

} // namespace orbitrain
