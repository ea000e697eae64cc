// CRC32C (Castagnoli, the iSCSI / RocksDB / ext4 polynomial): the check a
// dataChunk carries on the wire. The codec writes it when it encodes a chunk
// and checks it when it decodes one, so bytes damaged between two satellites
// (or a satellite and the ground) are refused on arrival. It is a link check,
// not a content address: chunks are keyed by SHA-256, checked on every read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace orbitrain {

/// CRC32C of `size` bytes at `data`, continuing from `crc` (0 to start):
/// crc32c(b, n, crc32c(a, m)) == crc32c of a's m bytes followed by b's n.
/// Uses the CPU's crc32 instruction where it has one (SSE4.2).
uint32_t crc32c(const uint8_t* data, size_t size, uint32_t crc = 0);

/// The same without the instruction: the portable reference (for tests).
uint32_t crc32c_portable(const uint8_t* data, size_t size, uint32_t crc = 0);

} // namespace orbitrain
