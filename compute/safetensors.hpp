// safetensors import and export (https://github.com/huggingface/safetensors):
//
//   [u64 little-endian N][N bytes of JSON header][raw little-endian data]
//   header: {"__metadata__": {str: str}, "<name>": {"dtype": "F32",
//            "shape": [..], "data_offsets": [begin, end]}, ...}
//
// offsets are relative to the start of the data section. A model is stored
// with nanoGPT's parameter names and PyTorch's (out, in) weight layout, the
// tied LM head only once (as transformer.wte.weight), and its config and byte
// vocabulary as JSON strings in __metadata__ ("config", "vocab"). Reading
// accepts F32, F16, BF16 and F64 and converts to f32. Every error is a
// SafetensorsError whose message names the file and, where there is one, the
// tensor.
#pragma once

#include "compute/config.hpp"
#include "compute/model.hpp"
#include "compute/tokenizer.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace orbitrain::compute {

class SafetensorsError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct StTensor {
  std::vector<int64_t> shape;
  std::vector<float> data; // converted to f32
};

struct StFile {
  std::map<std::string, std::string> metadata;
  std::map<std::string, StTensor> tensors;
};

// Reads and validates a whole file.
[[nodiscard]] StFile read_safetensors(const std::string& path);
// Writes f32 tensors (sorted by name, 8-byte aligned header) via a temporary
// file renamed into place.
void write_safetensors(const std::string& path, const StFile& file);

// Exports the model's parameters, config and vocabulary.
void save_model(const std::string& path, const Gpt& model, const Tokenizer& tok);

// The config and vocabulary of a model file (config.vocab_size is the vocab's).
struct ModelFileInfo {
  GptConfig config;
  Tokenizer tokenizer;
};
[[nodiscard]] ModelFileInfo read_model_info(const StFile& f, const std::string& path);

// Copies a file's tensors into the model's parameters. Every parameter of the
// model must be present with the same shape; extra tensors are allowed only if
// they belong to the same architecture (other stages' layers, lm_head.weight).
void load_weights(Gpt& model, const StFile& f, const std::string& path);

// Reads a model file and builds the whole model (or the given stage) from it.
struct LoadedModel {
  ModelFileInfo info;
  std::unique_ptr<Gpt> model;
};
[[nodiscard]] LoadedModel load_model(const std::string& path, Precision precision = Precision::f32,
                                     StageRange range = StageRange::whole());

} // namespace orbitrain::compute
