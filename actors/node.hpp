// A satellite: `orbitrain node --config C --node ID`. Starts an actor system
// for satellite ID, listens on its configured host and port, supervises the
// actors others spawn on it, logs one readiness line, and on SIGTERM or
// SIGINT stops its actors and returns 0.
#pragma once

#include "core/config.hpp"

#include <string>

namespace orbitrain {

/// Runs satellite `node_id` until SIGTERM/SIGINT. Returns the process exit
/// code: 0 after a clean stop, 2 when the satellite cannot start.
int run_satellite(const Constellation& constellation, const std::string& node_id);

} // namespace orbitrain
