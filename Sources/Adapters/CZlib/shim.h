// zlib, for the gzip-compressed catalog export.
#include <zlib.h>

/// deflateInit2 is a macro over deflateInit2_.
static inline int czlib_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
/// inflateInit2 with automatic gzip/zlib header detection.
static inline int czlib_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 32);
}
