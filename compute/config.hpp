// Model configuration: the handful of integers that fix a GPT's shape, the
// built-in configurations (`baby`, `small`) and their JSON form, which is what
// a configuration file holds and what safetensors `__metadata__` carries.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace orbitrain::compute {

struct GptConfig {
  int n_layer = 4;
  int n_head = 4;
  int n_embd = 128;
  int block_size = 64;
  int vocab_size = 0; // set from the tokenizer when 0
  bool bias = false;  // nanoGPT's `bias` flag: biases in Linear and LayerNorm

  [[nodiscard]] int head_size() const { return n_embd / n_head; }
  // Throws std::invalid_argument naming the offending field.
  void validate() const;
  [[nodiscard]] nlohmann::json to_json() const;
  static GptConfig from_json(const nlohmann::json& j);
  // "baby" or "small"; throws std::invalid_argument for any other name.
  static GptConfig builtin(const std::string& name);
  // A built-in name, or else the path of a JSON file with the fields above.
  static GptConfig from_name_or_file(const std::string& name_or_path);
  bool operator==(const GptConfig& o) const;
  bool operator!=(const GptConfig& o) const { return !(*this == o); }
};

// Parameter count of the whole model (tied head counted once).
[[nodiscard]] int64_t num_parameters(const GptConfig& c);
// Training FLOPs per token as in the nanoGPT/PaLM estimate: 6N + 12*L*C*T.
[[nodiscard]] double flops_per_token(const GptConfig& c);

} // namespace orbitrain::compute
