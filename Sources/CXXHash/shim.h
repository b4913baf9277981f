#ifndef SWIFT_CHECKPOINT_CXXHASH_SHIM_H
#define SWIFT_CHECKPOINT_CXXHASH_SHIM_H

#include <xxhash.h>

#endif
