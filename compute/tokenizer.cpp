// Byte tokenizer (see tokenizer.hpp).
#include "compute/tokenizer.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace orbitrain::compute {

Tokenizer::Tokenizer(std::vector<uint8_t> vocab) : vocab_(std::move(vocab)) {
  std::sort(vocab_.begin(), vocab_.end());
  vocab_.erase(std::unique(vocab_.begin(), vocab_.end()), vocab_.end());
  index_.fill(-1);
  for (size_t i = 0; i < vocab_.size(); ++i)
    index_[vocab_[i]] = int16_t(i);
}

Tokenizer Tokenizer::from_text(std::string_view text) {
  std::array<bool, 256> seen{};
  for (char c : text)
    seen[uint8_t(c)] = true;
  std::vector<uint8_t> v;
  for (int b = 0; b < 256; ++b)
    if (seen[size_t(b)])
      v.push_back(uint8_t(b));
  return Tokenizer(std::move(v));
}

std::string Tokenizer::to_json() const {
  nlohmann::json j = nlohmann::json::array();
  for (uint8_t b : vocab_)
    j.push_back(int(b));
  return j.dump();
}

Tokenizer Tokenizer::from_json(const std::string& s) {
  std::vector<uint8_t> v;
  try {
    for (const auto& x : nlohmann::json::parse(s)) {
      const int b = x.get<int>();
      if (b < 0 || b > 255)
        throw std::invalid_argument("vocabulary byte " + std::to_string(b) + " out of 0..255");
      v.push_back(uint8_t(b));
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("vocabulary is not a JSON array of bytes: ") +
                                e.what());
  }
  return Tokenizer(std::move(v));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const int16_t t = index_[uint8_t(text[i])];
    if (t < 0)
      throw std::invalid_argument("byte " + std::to_string(int(uint8_t(text[i]))) + " at offset " +
                                  std::to_string(i) + " is not in the model's vocabulary");
    out[i] = t;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& tokens) const {
  std::string s;
  s.reserve(tokens.size());
  for (int32_t t : tokens) {
    if (t < 0 || size_t(t) >= vocab_.size())
      throw std::out_of_range("token " + std::to_string(t) + " outside the vocabulary");
    s.push_back(char(vocab_[size_t(t)]));
  }
  return s;
}

} // namespace orbitrain::compute
