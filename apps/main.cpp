// The orbitrain command line: one binary for satellites (`node`), the ground
// station (`status`, and later ingest/train/export) and local experiments
// (`up`, `demo`). Parses arguments with CLI11 and hands off to the commands.
#include "apps/commands.hpp"
#include "apps/data_commands.hpp"
#include "apps/plan_command.hpp"
#include "apps/train_command.hpp"

#include <CLI/CLI.hpp>
#include <iostream>
#include <malloc.h>
#ifdef ORBITRAIN_HAVE_COMPUTE_CLI
#include "apps/cmd_compute.hpp"
#endif

int main(int argc, char** argv) {
  // Tensor frames (4 MiB) and data chunks (1 MiB) are allocated and freed
  // many times a second. By default glibc maps blocks that large afresh and
  // hands freed heap tops back to the kernel, so every frame faulted in new
  // zeroed pages (~1% of a training satellite's CPU). Keeping them in the
  // heap does not raise the peak footprint, only keeps it.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  CLI::App app{"orbitrain: train transformer language models across a constellation of satellites",
               "orbitrain"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "orbitrain 0.1.0");
  orbitrain::add_cluster_commands(app);
  orbitrain::add_data_commands(app);
  orbitrain::add_train_command(app);
  orbitrain::add_export_command(app);
  orbitrain::add_plan_command(app);
#ifdef ORBITRAIN_HAVE_COMPUTE_CLI
  orbitrain::apps::add_compute_commands(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
