#ifndef QUIVER_CCHECKSUM_H
#define QUIVER_CCHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli), as used by ext4, iSCSI and LevelDB. `crc` is the value of the bytes
/// before (0 to start); pass the result back in to continue over more bytes.
/// Uses the SSE4.2 instruction when the CPU has it (checked once), a table otherwise.
uint32_t quiver_crc32c(uint32_t crc, const void *data, size_t length);

/// The table implementation, always; for testing the hardware path against it.
uint32_t quiver_crc32c_portable(uint32_t crc, const void *data, size_t length);

/// 1 when `quiver_crc32c` uses the hardware instruction.
int quiver_crc32c_is_hardware(void);

#endif
