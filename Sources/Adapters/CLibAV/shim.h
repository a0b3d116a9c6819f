// The libav headers the transcoder uses, plus small inline functions for the macros Swift cannot import.
#ifndef CLIBAV_SHIM_H
#define CLIBAV_SHIM_H

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/time.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

/// AVERROR(EAGAIN) and AVERROR_EOF are function-like or compound macros.
static inline int clibav_error_eagain(void) { return AVERROR(EAGAIN); }
static inline int clibav_error_eof(void) { return AVERROR_EOF; }
static inline int clibav_error_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int clibav_error_exit(void) { return AVERROR_EXIT; }
static inline int clibav_error_enomem(void) { return AVERROR(ENOMEM); }
static inline int clibav_error_einval(void) { return AVERROR(EINVAL); }
static inline int clibav_error_encoder_not_found(void) { return AVERROR_ENCODER_NOT_FOUND; }
static inline int clibav_error_decoder_not_found(void) { return AVERROR_DECODER_NOT_FOUND; }

/// AV_NOPTS_VALUE and AV_TIME_BASE_Q are casts and compound literals.
static inline int64_t clibav_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline AVRational clibav_time_base_q(void) { return AV_TIME_BASE_Q; }

/// MKTAG builds a little-endian four-character code, as codec_tag wants it.
static inline unsigned clibav_mktag(unsigned char a, unsigned char b, unsigned char c, unsigned char d) { return MKTAG(a, b, c, d); }

/// Flags that are macros over shifted constants.
static inline int clibav_codec_flag_global_header(void) { return AV_CODEC_FLAG_GLOBAL_HEADER; }
static inline int clibav_fmt_globalheader(void) { return AVFMT_GLOBALHEADER; }
static inline int clibav_fmt_nofile(void) { return AVFMT_NOFILE; }
static inline int clibav_codec_cap_variable_frame_size(void) { return AV_CODEC_CAP_VARIABLE_FRAME_SIZE; }
static inline int clibav_frame_flag_corrupt(void) { return AV_FRAME_FLAG_CORRUPT; }
static inline int clibav_pkt_flag_corrupt(void) { return AV_PKT_FLAG_CORRUPT; }
static inline int clibav_disposition_attached_pic(void) { return AV_DISPOSITION_ATTACHED_PIC; }

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
