// SHA-256 (OpenSSL) for chunk keys and whole-dataset checksums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace orbitrain {

using Sha256 = std::array<uint8_t, 32>;

Sha256 sha256(const uint8_t* data, size_t size);

/// Lowercase hex, e.g. for logs and keys shown to people.
std::string to_hex(const Sha256& h);
/// The first `n` hex digits.
std::string short_hex(const Sha256& h, size_t n = 12);

/// Incremental hashing of a stream.
class Sha256Stream {
public:
  Sha256Stream();
  ~Sha256Stream();
  void update(const uint8_t* data, size_t size);
  Sha256 finish();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace orbitrain
