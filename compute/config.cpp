// GptConfig: validation, JSON and the built-in configurations.
#include "compute/config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace orbitrain::compute {

void GptConfig::validate() const {
  auto need = [](bool ok, const char* what) {
    if (!ok)
      throw std::invalid_argument(std::string("invalid model config: ") + what);
  };
  need(n_layer >= 1, "n_layer must be >= 1");
  need(n_head >= 1, "n_head must be >= 1");
  need(n_embd >= 1, "n_embd must be >= 1");
  need(n_embd % n_head == 0, "n_embd must be a multiple of n_head");
  need(block_size >= 1, "block_size must be >= 1");
  need(vocab_size >= 1 && vocab_size <= 256, "vocab_size must be in 1..256 (byte tokenizer)");
}

nlohmann::json GptConfig::to_json() const {
  return {{"n_layer", n_layer},       {"n_head", n_head},         {"n_embd", n_embd},
          {"block_size", block_size}, {"vocab_size", vocab_size}, {"bias", bias}};
}

GptConfig GptConfig::from_json(const nlohmann::json& j) {
  GptConfig c;
  try {
    c.n_layer = j.at("n_layer").get<int>();
    c.n_head = j.at("n_head").get<int>();
    c.n_embd = j.at("n_embd").get<int>();
    c.block_size = j.at("block_size").get<int>();
    c.vocab_size = j.value("vocab_size", 0);
    c.bias = j.value("bias", false);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("invalid model config JSON: ") + e.what());
  }
  return c;
}

GptConfig GptConfig::builtin(const std::string& name) {
  GptConfig c;
  if (name == "baby") {
    c.n_layer = 4, c.n_head = 4, c.n_embd = 128, c.block_size = 64;
  } else if (name == "small") {
    c.n_layer = 6, c.n_head = 6, c.n_embd = 384, c.block_size = 256;
  } else {
    throw std::invalid_argument("unknown built-in model '" + name + "' (baby, small)");
  }
  return c;
}

GptConfig GptConfig::from_name_or_file(const std::string& name_or_path) {
  if (name_or_path == "baby" || name_or_path == "small")
    return builtin(name_or_path);
  std::ifstream in(name_or_path);
  if (!in)
    throw std::invalid_argument("model '" + name_or_path +
                                "' is neither baby, small nor a readable JSON file");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(name_or_path + ": not valid JSON: " + e.what());
  }
  return from_json(j);
}

bool GptConfig::operator==(const GptConfig& o) const {
  return n_layer == o.n_layer && n_head == o.n_head && n_embd == o.n_embd &&
         block_size == o.block_size && vocab_size == o.vocab_size && bias == o.bias;
}

int64_t num_parameters(const GptConfig& c) {
  const int64_t C = c.n_embd, b = c.bias ? 1 : 0;
  const int64_t per_block = 2 * (C + b * C)         // ln_1, ln_2
                            + 3 * C * C + b * 3 * C // c_attn
                            + C * C + b * C         // attn.c_proj
                            + 4 * C * C + b * 4 * C // c_fc
                            + 4 * C * C + b * C;    // mlp.c_proj
  return int64_t(c.vocab_size) * C + int64_t(c.block_size) * C + c.n_layer * per_block + C + b * C;
}

double flops_per_token(const GptConfig& c) {
  return 6.0 * double(num_parameters(c)) +
         12.0 * c.n_layer * double(c.n_embd) * double(c.block_size);
}

} // namespace orbitrain::compute
