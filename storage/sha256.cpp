// Implementation of sha256.hpp with OpenSSL's EVP interface.
#include "storage/sha256.hpp"

#include <openssl/evp.h>
#include <stdexcept>

namespace orbitrain {

Sha256 sha256(const uint8_t* data, size_t size) {
  Sha256 out{};
  unsigned len = 0;
  if (EVP_Digest(data, size, out.data(), &len, EVP_sha256(), nullptr) != 1 || len != out.size())
    throw std::runtime_error("OpenSSL SHA-256 failed");
  return out;
}

std::string to_hex(const Sha256& h) {
  return short_hex(h, 64);
}

std::string short_hex(const Sha256& h, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : h) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out.substr(0, n);
}

struct Sha256Stream::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256Stream::Sha256Stream() : impl_(std::make_unique<Impl>()) {
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL SHA-256 init failed");
}

Sha256Stream::~Sha256Stream() = default;

void Sha256Stream::update(const uint8_t* data, size_t size) {
  EVP_DigestUpdate(impl_->ctx, data, size);
}

Sha256 Sha256Stream::finish() {
  Sha256 out{};
  unsigned len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out.data(), &len);
  return out;
}

} // namespace orbitrain
