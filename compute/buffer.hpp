// A 64-byte aligned, zero-initialised buffer that owns its memory.
// Parameters, gradients, optimizer state and activations all live in these
// (float; bf16 activations in Bf16Buffer) so that oneDNN and the vectorised
// loops see aligned data and so a whole parameter or gradient set can be
// shipped as one byte range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace orbitrain::compute {

template <typename T> class BasicBuffer {
public:
  BasicBuffer() = default;
  explicit BasicBuffer(size_t n) { resize(n); }
  BasicBuffer(const BasicBuffer& o) : BasicBuffer(o.n_) {
    if (n_)
      std::memcpy(p_, o.p_, n_ * sizeof(T));
  }
  BasicBuffer& operator=(const BasicBuffer& o) {
    if (this != &o) {
      BasicBuffer t(o);
      swap(t);
    }
    return *this;
  }
  BasicBuffer(BasicBuffer&& o) noexcept { swap(o); }
  BasicBuffer& operator=(BasicBuffer&& o) noexcept {
    swap(o);
    return *this;
  }
  ~BasicBuffer() { std::free(p_); }

  // Reallocates (zeroed) only when n differs from the current size.
  void resize(size_t n) {
    if (n == n_)
      return;
    std::free(p_);
    p_ = nullptr;
    n_ = 0;
    if (n == 0)
      return;
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    p_ = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!p_)
      throw std::bad_alloc();
    std::memset(p_, 0, bytes);
    n_ = n;
  }
  // Grows to at least n elements; never shrinks.
  void reserve(size_t n) {
    if (n > n_)
      resize(n);
  }
  void zero() {
    if (n_)
      std::memset(p_, 0, n_ * sizeof(T));
  }
  void swap(BasicBuffer& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
  }
  [[nodiscard]] T* data() { return p_; }
  [[nodiscard]] const T* data() const { return p_; }
  [[nodiscard]] size_t size() const { return n_; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }

private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

using Buffer = BasicBuffer<float>;
using Bf16Buffer = BasicBuffer<uint16_t>; // bf16 values (bf16.hpp)

} // namespace orbitrain::compute
