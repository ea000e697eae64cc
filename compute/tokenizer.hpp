// Byte-level character tokenizer, as nanoGPT's shakespeare_char: the
// vocabulary is the sorted set of distinct bytes of the training text and a
// token is a byte's index in it. The vocabulary travels with the model (as a
// JSON array of byte values in the safetensors metadata).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace orbitrain::compute {

class Tokenizer {
public:
  Tokenizer() { index_.fill(-1); }
  // vocab: distinct byte values; they are sorted here.
  explicit Tokenizer(std::vector<uint8_t> vocab);
  static Tokenizer from_text(std::string_view text);
  // "[10,32,33,...]" and back; from_json throws std::invalid_argument.
  [[nodiscard]] std::string to_json() const;
  static Tokenizer from_json(const std::string& s);

  [[nodiscard]] int size() const { return int(vocab_.size()); }
  [[nodiscard]] const std::vector<uint8_t>& vocab() const { return vocab_; }
  [[nodiscard]] bool contains(uint8_t byte) const { return index_[byte] >= 0; }
  // Throws std::invalid_argument naming the first byte not in the vocabulary
  // and its position.
  [[nodiscard]] std::vector<int32_t> encode(std::string_view text) const;
  [[nodiscard]] std::string decode(const std::vector<int32_t>& tokens) const;
  bool operator==(const Tokenizer& o) const { return vocab_ == o.vocab_; }

private:
  std::vector<uint8_t> vocab_;
  std::array<int16_t, 256> index_;
};

} // namespace orbitrain::compute
