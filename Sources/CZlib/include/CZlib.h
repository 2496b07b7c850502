#ifndef CZLIB_H
#define CZLIB_H

#include <zlib.h>

// inflateInit2 is a macro, which Swift cannot call.
static inline int czlib_inflate_init(z_streamp stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}

#endif
