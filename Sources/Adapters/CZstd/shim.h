// zstd's streaming API, for compressing bundles.
#include <zstd.h>
