# Finds orbitrain's dependencies, all from Debian 12 packages (see
# scripts/setup.sh for the package names). CAF 0.17.6 ships no CMake config,
# so it is wrapped here in imported targets: CAF::core, CAF::io, CAF::openssl.

find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(CapnProto CONFIG REQUIRED)
find_package(dnnl CONFIG REQUIRED)
find_package(RocksDB CONFIG REQUIRED)
find_package(tomlplusplus CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX) # oneDNN threads with OpenMP

find_path(CAF_INCLUDE_DIR caf/all.hpp)
find_library(CAF_CORE_LIBRARY caf_core)
find_library(CAF_IO_LIBRARY caf_io)
find_library(CAF_OPENSSL_LIBRARY caf_openssl)
if(NOT CAF_INCLUDE_DIR OR NOT CAF_CORE_LIBRARY OR NOT CAF_IO_LIBRARY
   OR NOT CAF_OPENSSL_LIBRARY)
  message(FATAL_ERROR "CAF not found: install libcaf-dev (scripts/setup.sh)")
endif()
file(STRINGS ${CAF_INCLUDE_DIR}/caf/config.hpp _caf_version_line
     REGEX "^#define CAF_VERSION [0-9]+")
string(REGEX REPLACE ".*CAF_VERSION ([0-9]+).*" "\\1" CAF_VERSION
       "${_caf_version_line}")
if(CAF_VERSION LESS 1705)
  message(FATAL_ERROR "CAF ${CAF_VERSION} is too old: orbitrain needs 0.17.5+")
endif()
message(STATUS "Found CAF ${CAF_VERSION}: ${CAF_CORE_LIBRARY}")

add_library(CAF::core SHARED IMPORTED)
set_target_properties(CAF::core PROPERTIES
  IMPORTED_LOCATION ${CAF_CORE_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${CAF_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES Threads::Threads)
add_library(CAF::io SHARED IMPORTED)
set_target_properties(CAF::io PROPERTIES
  IMPORTED_LOCATION ${CAF_IO_LIBRARY}
  INTERFACE_LINK_LIBRARIES CAF::core)
add_library(CAF::openssl SHARED IMPORTED)
set_target_properties(CAF::openssl PROPERTIES
  IMPORTED_LOCATION ${CAF_OPENSSL_LIBRARY}
  INTERFACE_LINK_LIBRARIES "CAF::io;OpenSSL::SSL;OpenSSL::Crypto")

if(ORBITRAIN_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
if(ORBITRAIN_BUILD_BENCH)
  find_package(benchmark CONFIG REQUIRED)
endif()
