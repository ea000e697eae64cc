// `orbitrain train`: a training job across the constellation.
#pragma once

#include <CLI/CLI.hpp>

namespace orbitrain {

void add_train_command(CLI::App& app);
void add_export_command(CLI::App& app);

} // namespace orbitrain
