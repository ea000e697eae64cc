// compute_cli_dev: the compute subcommands of `orbitrain` without the rest of
// the CLI (no actor system), for developing and testing them on their own.
#include "apps/cmd_compute.hpp"

int main(int argc, char** argv) {
  CLI::App app{"orbitrain compute commands (development driver)"};
  app.require_subcommand(1);
  add_compute_commands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
