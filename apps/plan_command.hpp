// `orbitrain plan`: a constellation's eclipses, ground contacts, link
// latencies and idle state of charge over a span of simulated time, from its
// file alone (orbit/plan.hpp), as a table, JSON (--json) or an SVG timeline
// (--svg FILE).
#pragma once

#include <CLI/CLI.hpp>

namespace orbitrain {

void add_plan_command(CLI::App& app);

} // namespace orbitrain
