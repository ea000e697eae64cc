// Names of the error codes of result.hpp.
#include "core/result.hpp"

namespace orbitrain {

const char* to_string(Errc code) {
  switch (code) {
  case Errc::invalid_config:
    return "invalid_config";
  case Errc::invalid_argument:
    return "invalid_argument";
  case Errc::io_error:
    return "io_error";
  case Errc::protocol_version:
    return "protocol_version";
  case Errc::malformed_message:
    return "malformed_message";
  case Errc::oversized_message:
    return "oversized_message";
  case Errc::missing_field:
    return "missing_field";
  case Errc::unreachable:
    return "unreachable";
  case Errc::timeout:
    return "timeout";
  case Errc::not_found:
    return "not_found";
  case Errc::corrupt:
    return "corrupt";
  case Errc::already_exists:
    return "already_exists";
  case Errc::storage_error:
    return "storage_error";
  }
  return "unknown";
}

} // namespace orbitrain
