// Implementation of data_commands.hpp: ingest, cat, datasets, repair.
#include "apps/data_commands.hpp"

#include "actors/ground_data.hpp"
#include "apps/cli_util.hpp"
#include "apps/progress.hpp"
#include "apps/status_view.hpp"
#include "storage/sha256.hpp"

#include <fmt/format.h>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

namespace orbitrain {

namespace {

struct Common {
  std::string config;
  std::string timeout = "10s";
  bool json = false;
  std::string ground_station;
};

void add_common(CLI::App* cmd, Common& c, bool json = true) {
  cmd->add_option("--config,-c", c.config, "Constellation file")->required();
  cmd->add_option("--timeout", c.timeout,
                  "Give up on a satellite after this long (with a ground link: also when it "
                  "is out of contact that long)")
      ->capture_default_str();
  cmd->add_option("--ground-station", c.ground_station,
                  "With [orbit]: talk through this ground station, only in contact (default: "
                  "the file's first; none: directly)");
  if (json)
    cmd->add_flag("--json", c.json, "Print the result as JSON");
}

// The ground station for a data command, through --ground-station.
std::unique_ptr<GroundStation> ground_for(const Constellation& constellation, const Common& c) {
  auto ground = std::make_unique<GroundStation>(constellation);
  if (!c.ground_station.empty())
    if (auto g = ground->use_ground_station(c.ground_station); !g)
      fail(g.error().message, 2);
  return ground;
}

void print_down(const std::vector<std::string>& down) {
  for (const auto& d : down)
    std::cerr << "warning: satellite " << d << "\n";
}

void add_ingest(CLI::App& app) {
  auto* cmd = app.add_subcommand("ingest", "Upload a file as a dataset, in replicated chunks");
  auto c = std::make_shared<Common>();
  auto o = std::make_shared<IngestOptions>();
  auto chunk = std::make_shared<std::string>("1MiB");
  add_common(cmd, *c);
  cmd->add_option("file", o->file, "File to upload")->required();
  cmd->add_option("--dataset,-d", o->dataset, "Dataset name")->required();
  cmd->add_option("--chunk-size", *chunk, "Chunk size (4KiB..32MiB)")->capture_default_str();
  cmd->add_option("--replicas,-r", o->replicas, "Copies of each chunk (default: the file's)");
  cmd->add_option("--min-replicas", o->min_replicas,
                  "Accept fewer copies when satellites are down (default: --replicas)");
  cmd->add_flag("--overwrite", o->overwrite, "Replace a dataset of the same name");
  cmd->add_option("--window", o->window,
                  "Chunks in flight to each satellite (raise it for long, fast links)")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  cmd->callback([c, o, chunk] {
    auto constellation = load_or_fail(c->config);
    o->timeout = duration_or_fail(c->timeout, "--timeout");
    o->chunk_size = size_or_fail(*chunk, "--chunk-size");
    auto ground = ground_for(constellation, *c);
    ProgressBar bar("ingest " + o->dataset);
    auto r = ingest(*ground, *o, [&](uint64_t d, uint64_t t) { bar.update(d, t); });
    bar.finish();
    if (!r)
      fail(r.error().message, r.error().code == Errc::invalid_argument ? 2 : 1);
    print_down(r->down);
    if (c->json) {
      std::cout << nlohmann::json{{"dataset", o->dataset},
                                  {"bytes", r->bytes},
                                  {"chunks", r->chunks},
                                  {"replicas", r->replicas},
                                  {"copies_sent", r->copies_sent},
                                  {"bytes_sent", r->bytes_sent},
                                  {"copies_present", r->copies_present},
                                  {"was_complete", r->was_complete},
                                  {"down", r->down},
                                  {"seconds", r->seconds}}
                       .dump(2)
                << std::endl;
    } else {
      std::cout << fmt::format("dataset {}: {} in {} chunks x {} replicas; sent {} copies ({}), "
                               "{} already present; {:.2f} s ({:.1f} MB/s)\n",
                               o->dataset, human_bytes(r->bytes), r->chunks, r->replicas,
                               r->copies_sent, human_bytes(r->bytes_sent), r->copies_present,
                               r->seconds, r->seconds > 0 ? r->bytes / r->seconds / 1e6 : 0.0);
    }
  });
}

void add_cat(CLI::App& app) {
  auto* cmd = app.add_subcommand("cat", "Write a dataset to stdout, verified");
  auto c = std::make_shared<Common>();
  auto name = std::make_shared<std::string>();
  add_common(cmd, *c, false);
  cmd->add_option("--dataset,-d", *name, "Dataset name")->required();
  cmd->callback([c, name] {
    auto constellation = load_or_fail(c->config);
    auto timeout = duration_or_fail(c->timeout, "--timeout");
    auto ground = ground_for(constellation, *c);
    auto r = cat_dataset(*ground, *name, stdout, timeout);
    if (!r)
      fail(r.error().message);
    print_down(r->down);
  });
}

void add_datasets(CLI::App& app) {
  auto* cmd = app.add_subcommand("datasets", "List the datasets and where their chunks are");
  auto c = std::make_shared<Common>();
  add_common(cmd, *c);
  cmd->callback([c] {
    auto constellation = load_or_fail(c->config);
    auto timeout = duration_or_fail(c->timeout, "--timeout");
    auto ground = ground_for(constellation, *c);
    auto s = survey(*ground, timeout);
    if (c->json) {
      nlohmann::json sats = nlohmann::json::array();
      for (const auto& h : s.satellites) {
        uint64_t bytes = 0;
        for (const auto& [k, v] : h.chunks)
          bytes += v;
        sats.push_back({{"id", h.id},
                        {"up", h.up},
                        {"error", h.error},
                        {"chunks", h.chunks.size()},
                        {"bytes", bytes}});
      }
      nlohmann::json ds = nlohmann::json::array();
      for (const auto& d : s.datasets) {
        nlohmann::json per = nlohmann::json::object();
        for (const auto& [id, cb] : d.per_satellite)
          per[id] = {{"chunks", cb.first}, {"bytes", cb.second}};
        ds.push_back({{"name", d.manifest.name},
                      {"bytes", d.manifest.total_bytes},
                      {"chunks", d.manifest.chunk_hashes.size()},
                      {"replicas", d.manifest.replicas},
                      {"sha256", to_hex(d.manifest.sha256)},
                      {"vocabulary_size", d.manifest.vocabulary.size()},
                      {"created_at_ms", d.manifest.created_at_ms},
                      {"min_copies", d.min_copies},
                      {"under_replicated", d.under_replicated},
                      {"manifest_on", d.held_by},
                      {"per_satellite", per}});
      }
      std::cout << nlohmann::json{{"satellites", sats}, {"datasets", ds}}.dump(2) << std::endl;
      return;
    }
    for (const auto& h : s.satellites)
      if (!h.up)
        std::cout << "satellite " << h.id << " unreachable: " << h.error << "\n";
    if (s.datasets.empty())
      std::cout << "no datasets\n";
    for (const auto& d : s.datasets) {
      const auto& m = d.manifest;
      std::cout << fmt::format(
          "{}: {} in {} chunks, {} replicas wanted, min {} copies{}\n", m.name,
          human_bytes(m.total_bytes), m.chunk_hashes.size(), m.replicas, d.min_copies,
          d.under_replicated ? fmt::format(", {} chunks UNDER-REPLICATED", d.under_replicated)
                             : "");
      for (const auto& [id, cb] : d.per_satellite)
        std::cout << fmt::format("  {:<12} {:>6} chunks {:>12}\n", id, cb.first,
                                 human_bytes(cb.second));
    }
  });
}

void add_repair(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "repair", "Verify every chunk copy and restore the wanted number of replicas");
  auto c = std::make_shared<Common>();
  auto name = std::make_shared<std::string>();
  add_common(cmd, *c);
  cmd->add_option("--dataset,-d", *name, "Only this dataset (default: all)");
  cmd->callback([c, name] {
    auto constellation = load_or_fail(c->config);
    auto timeout = duration_or_fail(c->timeout, "--timeout");
    auto ground = ground_for(constellation, *c);
    ProgressBar bar("repair");
    auto r = repair(*ground, *name, timeout, [&](uint64_t d, uint64_t t) { bar.update(d, t); });
    bar.finish();
    if (!r)
      fail(r.error().message);
    print_down(r->down);
    if (c->json)
      std::cout << nlohmann::json{{"chunks_checked", r->chunks_checked},
                                  {"copies_restored", r->copies_restored},
                                  {"bytes_sent", r->bytes_sent},
                                  {"corrupt_dropped", r->corrupt_dropped},
                                  {"manifests_restored", r->manifests_restored},
                                  {"lost_chunks", r->lost_chunks}}
                       .dump(2)
                << std::endl;
    else
      std::cout << fmt::format("checked {} chunks: restored {} copies ({}), dropped {} corrupt "
                               "copies, restored {} manifests, {} chunks lost\n",
                               r->chunks_checked, r->copies_restored, human_bytes(r->bytes_sent),
                               r->corrupt_dropped, r->manifests_restored, r->lost_chunks);
    if (r->lost_chunks)
      throw CLI::RuntimeError(1);
  });
}

} // namespace

void add_data_commands(CLI::App& app) {
  add_ingest(app);
  add_cat(app);
  add_datasets(app);
  add_repair(app);
}

} // namespace orbitrain
