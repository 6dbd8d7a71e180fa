// crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor
// 0xFFFFFFFF), the checksum of every chunk in our shard formats. crc32c("123456789") = 0xE3069283.
#pragma once
#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(const void *data, size_t len);
// Continue a running CRC: crc32c_update(crc32c_update(0, a), b) == crc32c(a ++ b).
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
// The table-driven path, always compiled (crc32c_update uses SSE4.2's crc32 where the CPU has it);
// tests compare the two.
uint32_t crc32c_update_portable(uint32_t crc, const void *data, size_t len);
