// The compute subcommands of the orbitrain CLI: `train-local`, `eval`,
// `generate` and `bench compute`. They run the compute/ engine in this
// process, with no actor system. Errors print a message to stderr and raise
// CLI::RuntimeError with a non-zero code.
#pragma once

#include <CLI/CLI.hpp>

namespace orbitrain::apps {

// Registers the subcommands on app (reusing an existing `bench` subcommand).
void add_compute_commands(CLI::App& app);

} // namespace orbitrain::apps

// Unqualified alias, as main.cpp calls it.
using orbitrain::apps::add_compute_commands;
