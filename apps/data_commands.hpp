// The ground station's data commands: ingest, cat, datasets, repair.
#pragma once

#include <CLI/CLI.hpp>

namespace orbitrain {

void add_data_commands(CLI::App& app);

} // namespace orbitrain
