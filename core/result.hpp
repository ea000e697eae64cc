// Errors as values for the layers that know nothing of CAF (core/, schemas/,
// storage/, compute/). An Error carries a machine-checkable code and a message
// written for a person: it names what is wrong and where. Result<T> holds
// either a T or an Error; it is cheap to move and must be checked.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace orbitrain {

enum class Errc {
  invalid_config,    // a constellation file is wrong (the message has file:line)
  invalid_argument,  // a caller passed a value out of range
  io_error,          // the OS refused a read, write, fork or exec
  protocol_version,  // a message from an incompatible protocol version
  malformed_message, // bytes that are not a valid message
  oversized_message, // a message larger than the receiver accepts
  missing_field,     // a message lacks a field its kind requires
  unreachable,       // a satellite could not be reached in time
  timeout,           // an operation did not complete before its deadline
  not_found,         // a named thing (satellite, dataset, tensor) does not exist
  corrupt,           // stored bytes no longer match their checksum
  already_exists,    // a name is taken (e.g. a dataset), and overwriting was not asked for
  storage_error,     // the store (RocksDB) failed
};

/// Returns a short stable name for `code`, e.g. "malformed_message".
const char* to_string(Errc code);

struct Error {
  Errc code;
  std::string message;
};

template <class T> class [[nodiscard]] Result {
public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

private:
  std::variant<T, Error> v_;
};

/// Result of an operation that yields nothing on success.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(Errc code, std::string message) {
  return Error{code, std::move(message)};
}

} // namespace orbitrain
