// A 64-byte aligned, zero-initialised float buffer that owns its memory.
// Parameters, gradients, optimizer state and activations all live in these so
// that oneDNN and the vectorised loops see aligned data and so a whole
// parameter or gradient set can be shipped as one byte range.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace orbitrain::compute {

class Buffer {
public:
  Buffer() = default;
  explicit Buffer(size_t n) { resize(n); }
  Buffer(const Buffer& o) : Buffer(o.n_) {
    if (n_)
      std::memcpy(p_, o.p_, n_ * sizeof(float));
  }
  Buffer& operator=(const Buffer& o) {
    if (this != &o) {
      Buffer t(o);
      swap(t);
    }
    return *this;
  }
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    swap(o);
    return *this;
  }
  ~Buffer() { std::free(p_); }

  // Reallocates (zeroed) only when n differs from the current size.
  void resize(size_t n) {
    if (n == n_)
      return;
    std::free(p_);
    p_ = nullptr;
    n_ = 0;
    if (n == 0)
      return;
    const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p_)
      throw std::bad_alloc();
    std::memset(p_, 0, bytes);
    n_ = n;
  }
  // Grows to at least n floats; never shrinks.
  void reserve(size_t n) {
    if (n > n_)
      resize(n);
  }
  void zero() {
    if (n_)
      std::memset(p_, 0, n_ * sizeof(float));
  }
  void swap(Buffer& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
  }
  [[nodiscard]] float* data() { return p_; }
  [[nodiscard]] const float* data() const { return p_; }
  [[nodiscard]] size_t size() const { return n_; }
  float& operator[](size_t i) { return p_[i]; }
  const float& operator[](size_t i) const { return p_[i]; }

private:
  float* p_ = nullptr;
  size_t n_ = 0;
};

} // namespace orbitrain::compute
