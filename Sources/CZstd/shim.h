#ifndef SWIFT_CHECKPOINT_CZSTD_SHIM_H
#define SWIFT_CHECKPOINT_CZSTD_SHIM_H

#include <zstd.h>

/// `ZSTD_CONTENTSIZE_UNKNOWN` and `ZSTD_CONTENTSIZE_ERROR` are macros over
/// integer expressions Swift does not import; expose them as functions.
static inline unsigned long long ckpt_zstd_contentsize_unknown(void) { return ZSTD_CONTENTSIZE_UNKNOWN; }
static inline unsigned long long ckpt_zstd_contentsize_error(void) { return ZSTD_CONTENTSIZE_ERROR; }

#endif
