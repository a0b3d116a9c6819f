// The libav headers the transcoder uses, plus small inline functions for the macros Swift cannot import.
#ifndef CLIBAV_SHIM_H
#define CLIBAV_SHIM_H

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

/// AVERROR(EAGAIN) and AVERROR_EOF are function-like or compound macros.
static inline int clibav_error_eagain(void) { return AVERROR(EAGAIN); }
static inline int clibav_error_eof(void) { return AVERROR_EOF; }

/// AV_VERSION_MAJOR and friends are macros over an unsigned version number.
static inline unsigned clibav_version_major(unsigned version) { return AV_VERSION_MAJOR(version); }
static inline unsigned clibav_version_minor(unsigned version) { return AV_VERSION_MINOR(version); }
static inline unsigned clibav_version_micro(unsigned version) { return AV_VERSION_MICRO(version); }

/// The versions of the headers this module was compiled against, to compare with the libraries loaded at run time.
static inline unsigned clibav_header_version_avformat(void) { return LIBAVFORMAT_VERSION_INT; }
static inline unsigned clibav_header_version_avcodec(void) { return LIBAVCODEC_VERSION_INT; }
static inline unsigned clibav_header_version_avfilter(void) { return LIBAVFILTER_VERSION_INT; }
static inline unsigned clibav_header_version_avutil(void) { return LIBAVUTIL_VERSION_INT; }
static inline unsigned clibav_header_version_swscale(void) { return LIBSWSCALE_VERSION_INT; }
static inline unsigned clibav_header_version_swresample(void) { return LIBSWRESAMPLE_VERSION_INT; }

#endif
