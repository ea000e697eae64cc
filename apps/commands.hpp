// The satellite and cluster commands of the orbitrain CLI: node, up, status,
// demo. Each registers itself on the CLI11 app; their callbacks throw
// CLI::RuntimeError with the exit code after printing what went wrong.
#pragma once

#include <CLI/CLI.hpp>

namespace orbitrain {

void add_cluster_commands(CLI::App& app);

} // namespace orbitrain
