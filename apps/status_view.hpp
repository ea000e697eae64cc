// Renders satellite probes for people (an aligned table) and for programs
// (JSON), shared by `orbitrain status` and `orbitrain demo`.
#pragma once

#include "actors/ground.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace orbitrain {

std::string status_table(const std::vector<SatelliteProbe>& probes);
nlohmann::json status_json(const std::string& constellation,
                           const std::vector<SatelliteProbe>& probes);

/// "1.5 GiB", "12.0 MiB", "512 B".
std::string human_bytes(uint64_t bytes);
/// "3h04m", "2m05s", "42s".
std::string human_duration_ms(uint64_t ms);

} // namespace orbitrain
