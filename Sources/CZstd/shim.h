#ifndef SWIFT_CHECKPOINT_CZSTD_SHIM_H
#define SWIFT_CHECKPOINT_CZSTD_SHIM_H

#include <zstd.h>

/// `ZSTD_CONTENTSIZE_UNKNOWN` and `ZSTD_CONTENTSIZE_ERROR` are macros over
/// integer expressions Swift does not import; expose them as functions.
static inline unsigned long long ckpt_zstd_contentsize_unknown(void) { return ZSTD_CONTENTSIZE_UNKNOWN; }
static inline unsigned long long ckpt_zstd_contentsize_error(void) { return ZSTD_CONTENTSIZE_ERROR; }

/// `ZSTD_d_forceIgnoreChecksum`, a parameter of zstd's experimental section (stable since 1.4.7
/// under the name `ZSTD_d_experimentalParam3`, the only one `zstd.h` declares without
/// `ZSTD_STATIC_LINKING_ONLY`): with value 1 a decompression context skips frames' content checksums.
static inline ZSTD_dParameter ckpt_zstd_d_force_ignore_checksum(void) { return ZSTD_d_experimentalParam3; }

#endif
