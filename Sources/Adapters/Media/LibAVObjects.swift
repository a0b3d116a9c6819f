import CLibAV

// Ownership wrappers: one final class per libav object, created in init (or a throwing factory), freed exactly once
// in deinit. They are not Sendable: each transcode or probe uses its own objects on one thread.

let noPTS: Int64 = clibav_nopts_value()
let timeBaseQ: AVRational = clibav_time_base_q()

/// A deadline the libav I/O layer polls through `AVIOInterruptCB` and the pipeline checks between packets.
final class Deadline {
    /// `av_gettime_relative()` microseconds; nil means no limit.
    let endMicroseconds: Int64?

    init(_ limit: Duration?) {
        if let limit {
            let (seconds, attoseconds) = limit.components
            let micros = seconds.multipliedReportingOverflow(by: 1_000_000)
            let total = micros.overflow ? Int64.max / 2 : micros.partialValue + attoseconds / 1_000_000_000_000
            endMicroseconds = av_gettime_relative() + max(0, total)
        } else {
            endMicroseconds = nil
        }
    }

    var expired: Bool {
        guard let endMicroseconds else { return false }
        return av_gettime_relative() >= endMicroseconds
    }

    /// An interrupt callback whose opaque pointer is this object. The object must outlive every use.
    var interruptCallback: AVIOInterruptCB {
        AVIOInterruptCB(
            callback: { opaque in
                guard let opaque else { return 0 }
                return Unmanaged<Deadline>.fromOpaque(opaque).takeUnretainedValue().expired ? 1 : 0
            },
            opaque: Unmanaged.passUnretained(self).toOpaque())
    }
}

final class Packet {
    let pointer: UnsafeMutablePointer<AVPacket>

    init() throws(MediaError) {
        guard let packet = av_packet_alloc() else { throw MediaError(.processing, "out of memory allocating a packet") }
        pointer = packet
    }

    deinit {
        var packet: UnsafeMutablePointer<AVPacket>? = pointer
        av_packet_free(&packet)
    }

    func unref() { av_packet_unref(pointer) }
}

final class Frame {
    let pointer: UnsafeMutablePointer<AVFrame>

    init() throws(MediaError) {
        guard let frame = av_frame_alloc() else { throw MediaError(.processing, "out of memory allocating a frame") }
        pointer = frame
    }

    deinit {
        var frame: UnsafeMutablePointer<AVFrame>? = pointer
        av_frame_free(&frame)
    }

    func unref() { av_frame_unref(pointer) }
}

/// An `AVDictionary` built from Swift pairs, freed in deinit. libav may consume entries (avcodec_open2 leaves the
/// unused ones), so `pointer` is passed by address.
final class OptionDictionary {
    var pointer: OpaquePointer?

    init(_ entries: [(String, String)] = []) {
        for (key, value) in entries { set(key, value) }
    }

    deinit { av_dict_free(&pointer) }

    func set(_ key: String, _ value: String) { av_dict_set(&pointer, key, value, 0) }

    var keys: [String] { entries(of: pointer).map(\.key) }
}

/// The entries of an `AVDictionary` (not owned).
func entries(of dictionary: OpaquePointer?) -> [(key: String, value: String)] {
    var result: [(key: String, value: String)] = []
    var entry: UnsafeMutablePointer<AVDictionaryEntry>? = nil
    while let next = av_dict_get(dictionary, "", entry, AV_DICT_IGNORE_SUFFIX) {
        result.append((String(cString: next.pointee.key), String(cString: next.pointee.value)))
        entry = next
    }
    return result
}

/// An opened input (`avformat_open_input` + `avformat_find_stream_info`), closed in deinit.
final class InputFile {
    private(set) var context: UnsafeMutablePointer<AVFormatContext>
    let path: String
    private let deadline: Deadline

    init(path: String, deadline: Deadline) throws(MediaError) {
        self.path = path
        self.deadline = deadline
        guard var context = avformat_alloc_context() else { throw MediaError(.processing, "out of memory opening \(fileName(path))") }
        context.pointee.interrupt_callback = deadline.interruptCallback
        var optional: UnsafeMutablePointer<AVFormatContext>? = context
        // On failure avformat_open_input frees the context and sets it to NULL.
        let opened = avformat_open_input(&optional, path, nil, nil)
        if opened < 0 {
            if deadline.expired { throw MediaError(.timeLimitExceeded, "\(fileName(path)): time limit reached while opening") }
            throw MediaError.libav(.unreadable, "\(fileName(path)) is not a readable media file", opened)
        }
        context = optional!
        self.context = context
        let found = avformat_find_stream_info(context, nil)
        if found < 0 {
            // Deinit closes the input.
            if deadline.expired { throw MediaError(.timeLimitExceeded, "\(fileName(path)): time limit reached while probing") }
            throw MediaError.libav(.unreadable, "\(fileName(path)): cannot read stream information", found)
        }
    }

    deinit {
        var optional: UnsafeMutablePointer<AVFormatContext>? = context
        avformat_close_input(&optional)
    }

    var streamCount: Int { Int(context.pointee.nb_streams) }

    func stream(_ index: Int) -> UnsafeMutablePointer<AVStream> { context.pointee.streams[index]! }

    var formatName: String { String(cString: context.pointee.iformat.pointee.name) }

    /// Seconds, or nil when the container does not say.
    var duration: Double? {
        let value = context.pointee.duration
        return value == noPTS || value <= 0 ? nil : Double(value) / Double(AV_TIME_BASE)
    }

    var startTime: Int64 { context.pointee.start_time == noPTS ? 0 : context.pointee.start_time }

    var metadata: [(key: String, value: String)] { entries(of: context.pointee.metadata) }

    var chapterCount: Int { Int(context.pointee.nb_chapters) }

    func chapter(_ index: Int) -> UnsafeMutablePointer<AVChapter> { context.pointee.chapters[index]! }

    /// Reads the next packet into `packet`: true, or false at the end of input. Other errors throw.
    func read(into packet: Packet) -> Int32 { av_read_frame(context, packet.pointer) }
}

/// An output file: the muxer context and its AVIO, closed and freed in deinit (after a failure the partial file
/// stays on disk; the caller removes it).
final class OutputFile {
    let context: UnsafeMutablePointer<AVFormatContext>
    let path: String
    private let deadline: Deadline
    private(set) var headerWritten = false
    private var trailerWritten = false

    init(path: String, formatName: String, deadline: Deadline) throws(MediaError) {
        self.path = path
        self.deadline = deadline
        var optional: UnsafeMutablePointer<AVFormatContext>? = nil
        try check(avformat_alloc_output_context2(&optional, nil, formatName, path), .output, "cannot create a \(formatName) muxer for \(fileName(path))")
        guard let context = optional else { throw MediaError(.output, "cannot create a \(formatName) muxer for \(fileName(path))") }
        self.context = context
        context.pointee.interrupt_callback = deadline.interruptCallback
        if context.pointee.oformat.pointee.flags & clibav_fmt_nofile() == 0 {
            var callback = deadline.interruptCallback
            let opened = avio_open2(&context.pointee.pb, path, AVIO_FLAG_WRITE, &callback, nil)
            if opened < 0 {
                // Deinit frees the context (pb is still NULL).
                throw MediaError.libav(.output, "cannot create \(fileName(path))", opened)
            }
        }
    }

    deinit {
        close()
        avformat_free_context(context)
    }

    /// Closes the file (flushing what libav buffered). Idempotent; the muxer context stays until deinit.
    func close() {
        if context.pointee.oformat.pointee.flags & clibav_fmt_nofile() == 0 {
            avio_closep(&context.pointee.pb)
        }
    }

    var wantsGlobalHeader: Bool { context.pointee.oformat.pointee.flags & clibav_fmt_globalheader() != 0 }

    func addStream() throws(MediaError) -> UnsafeMutablePointer<AVStream> {
        guard let stream = avformat_new_stream(context, nil) else { throw MediaError(.output, "out of memory adding a stream to \(fileName(path))") }
        return stream
    }

    func writeHeader(options: OptionDictionary) throws(MediaError) {
        let result = avformat_write_header(context, &options.pointer)
        if result < 0 { throw failure("cannot write the header of", result) }
        headerWritten = true
    }

    /// Takes ownership of the packet's data (av_interleaved_write_frame resets it).
    func write(_ packet: UnsafeMutablePointer<AVPacket>) throws(MediaError) {
        let result = av_interleaved_write_frame(context, packet)
        if result < 0 { throw failure("cannot write a packet to", result) }
    }

    func writeTrailer() throws(MediaError) {
        guard headerWritten, !trailerWritten else { return }
        trailerWritten = true
        let result = av_write_trailer(context)
        if result < 0 { throw failure("cannot finish", result) }
    }

    private func failure(_ what: String, _ code: Int32) -> MediaError {
        if deadline.expired { return MediaError(.timeLimitExceeded, "\(fileName(path)): time limit reached while writing") }
        return MediaError.libav(.output, "\(what) \(fileName(path))", code)
    }
}

/// An `AVCodecContext`, freed in deinit.
final class CodecContext {
    let pointer: UnsafeMutablePointer<AVCodecContext>
    let codec: UnsafePointer<AVCodec>

    init(codec: UnsafePointer<AVCodec>) throws(MediaError) {
        guard let context = avcodec_alloc_context3(codec) else { throw MediaError(.processing, "out of memory allocating a codec context") }
        self.pointer = context
        self.codec = codec
    }

    deinit {
        var optional: UnsafeMutablePointer<AVCodecContext>? = pointer
        avcodec_free_context(&optional)
    }

    var codecName: String { String(cString: codec.pointee.name) }

    /// Opens the codec with options; options it did not use are returned.
    func open(options: [(String, String)], what: @autoclosure () -> String) throws(MediaError) -> [String] {
        let dictionary = OptionDictionary(options)
        try check(avcodec_open2(pointer, codec, &dictionary.pointer), .processing, "cannot open \(what())")
        return dictionary.keys
    }
}

/// An `AVAudioFifo`, freed in deinit.
final class AudioFifo {
    let pointer: OpaquePointer

    init(format: AVSampleFormat, channels: Int32) throws(MediaError) {
        guard let fifo = av_audio_fifo_alloc(format, channels, 4096) else { throw MediaError(.processing, "out of memory allocating an audio FIFO") }
        pointer = fifo
    }

    deinit { av_audio_fifo_free(pointer) }

    var count: Int32 { av_audio_fifo_size(pointer) }

    func write(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        let written = frame.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 8) {
            av_audio_fifo_write(pointer, $0, frame.pointee.nb_samples)
        }
        if written < frame.pointee.nb_samples { throw MediaError.libav(.processing, "cannot buffer audio samples", written < 0 ? written : AVErrorCode.noMemory) }
    }

    /// Reads up to `count` samples into a freshly allocated buffer of `frame` (which must have format, layout and
    /// sample rate set).
    func read(into frame: UnsafeMutablePointer<AVFrame>, count: Int32) throws(MediaError) {
        frame.pointee.nb_samples = count
        try check(av_frame_get_buffer(frame, 0), .processing, "cannot allocate an audio frame")
        let read = frame.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 8) {
            av_audio_fifo_read(pointer, $0, count)
        }
        if read < count { throw MediaError.libav(.processing, "cannot read buffered audio samples", read < 0 ? read : AVErrorCode.invalidData) }
    }
}

/// A configured filter graph with one buffer source and one buffer sink, freed in deinit (the graph owns its filters).
final class FilterGraph {
    let graph: UnsafeMutablePointer<AVFilterGraph>
    private(set) var source: UnsafeMutablePointer<AVFilterContext>!
    private(set) var sink: UnsafeMutablePointer<AVFilterContext>!
    let description: String

    /// `isVideo` picks buffer/buffersink or abuffer/abuffersink; `sourceArguments` are the source's options;
    /// `filters` the chain between them (libavfilter syntax).
    init(isVideo: Bool, sourceArguments: String, filters: String) throws(MediaError) {
        guard let graph = avfilter_graph_alloc() else { throw MediaError(.processing, "out of memory allocating a filter graph") }
        self.graph = graph
        self.description = filters
        // 0: libavfilter picks the thread count (the ffmpeg CLI's default).
        graph.pointee.nb_threads = 0
        // The ffmpeg CLI's scaler flags for automatically inserted conversions (freed with the graph).
        graph.pointee.scale_sws_opts = av_strdup("flags=bicubic")
        guard let bufferFilter = avfilter_get_by_name(isVideo ? "buffer" : "abuffer"),
            let sinkFilter = avfilter_get_by_name(isVideo ? "buffersink" : "abuffersink")
        else { throw MediaError(.unsupported, "libavfilter lacks the buffer source or sink") }
        var sourceContext: UnsafeMutablePointer<AVFilterContext>? = nil
        try check(avfilter_graph_create_filter(&sourceContext, bufferFilter, "in", sourceArguments, nil, graph), .processing, "cannot create the filter source (\(sourceArguments))")
        var sinkContext: UnsafeMutablePointer<AVFilterContext>? = nil
        try check(avfilter_graph_create_filter(&sinkContext, sinkFilter, "out", nil, nil, graph), .processing, "cannot create the filter sink")
        source = sourceContext
        sink = sinkContext

        // The graph's open ends: "in" feeds the chain's input, the chain's output feeds "out". avfilter_graph_parse_ptr
        // consumes the linked entries and leaves in these variables what stayed open; that is what is freed.
        var outputs = avfilter_inout_alloc()
        var inputs = avfilter_inout_alloc()
        defer {
            avfilter_inout_free(&outputs)
            avfilter_inout_free(&inputs)
        }
        guard let outputEnd = outputs, let inputEnd = inputs else { throw MediaError(.processing, "out of memory building a filter graph") }
        outputEnd.pointee.name = av_strdup("in")
        outputEnd.pointee.filter_ctx = sourceContext
        outputEnd.pointee.pad_idx = 0
        outputEnd.pointee.next = nil
        inputEnd.pointee.name = av_strdup("out")
        inputEnd.pointee.filter_ctx = sinkContext
        inputEnd.pointee.pad_idx = 0
        inputEnd.pointee.next = nil
        let parsed = avfilter_graph_parse_ptr(graph, filters, &inputs, &outputs, nil)
        try check(parsed, .processing, "cannot build the filter chain \"\(filters)\"")
        try check(avfilter_graph_config(graph, nil), .processing, "cannot configure the filter chain \"\(filters)\"")
    }

    deinit {
        var optional: UnsafeMutablePointer<AVFilterGraph>? = graph
        avfilter_graph_free(&optional)
    }

    /// Sends a frame (nil: end of stream). The frame's references are moved into the graph.
    func send(_ frame: UnsafeMutablePointer<AVFrame>?) throws(MediaError) {
        try check(av_buffersrc_add_frame_flags(source, frame, 0), .processing, "cannot filter a frame through \"\(description)\"")
    }

    /// Pulls a filtered frame: 0, EAGAIN or EOF.
    func receive(into frame: UnsafeMutablePointer<AVFrame>) -> Int32 { av_buffersink_get_frame(sink, frame) }

    var outputTimeBase: AVRational { av_buffersink_get_time_base(sink) }
    var outputFrameRate: AVRational { av_buffersink_get_frame_rate(sink) }
    var outputWidth: Int32 { av_buffersink_get_w(sink) }
    var outputHeight: Int32 { av_buffersink_get_h(sink) }
    var outputFormat: Int32 { av_buffersink_get_format(sink) }
    var outputSampleAspectRatio: AVRational { av_buffersink_get_sample_aspect_ratio(sink) }
    var outputSampleRate: Int32 { av_buffersink_get_sample_rate(sink) }

    func outputChannelLayout() throws(MediaError) -> ChannelLayout {
        let layout = ChannelLayout()
        try check(av_buffersink_get_ch_layout(sink, &layout.value), .processing, "cannot read the filter's channel layout")
        return layout
    }
}

/// An `AVChannelLayout` value with its own storage, uninitialised in deinit (custom layouts allocate).
final class ChannelLayout {
    var value = AVChannelLayout()

    init() {}

    convenience init(copying other: UnsafePointer<AVChannelLayout>) throws(MediaError) {
        self.init()
        try check(av_channel_layout_copy(&value, other), .processing, "cannot copy a channel layout")
    }

    convenience init(defaultFor channels: Int32) {
        self.init()
        av_channel_layout_default(&value, channels)
    }

    deinit { av_channel_layout_uninit(&value) }

    var channels: Int32 { value.nb_channels }

    var isSpecified: Bool { value.order != AV_CHANNEL_ORDER_UNSPEC && value.nb_channels > 0 }

    var name: String {
        var buffer = [CChar](repeating: 0, count: 128)
        let result = av_channel_layout_describe(&value, &buffer, buffer.count)
        if result < 0 { return "\(value.nb_channels) channels" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func copy(to destination: UnsafeMutablePointer<AVChannelLayout>) throws(MediaError) {
        av_channel_layout_uninit(destination)
        try check(av_channel_layout_copy(destination, &value), .processing, "cannot copy a channel layout")
    }
}

extension AVRational {
    var isValid: Bool { num > 0 && den > 0 }
    var doubleValue: Double { den == 0 ? 0 : Double(num) / Double(den) }
}

func pixelFormatName(_ format: Int32) -> String {
    guard let name = av_get_pix_fmt_name(AVPixelFormat(rawValue: format)) else { return "none" }
    return String(cString: name)
}

func sampleFormatName(_ format: Int32) -> String {
    guard let name = av_get_sample_fmt_name(AVSampleFormat(rawValue: format)) else { return "none" }
    return String(cString: name)
}

func codecName(_ id: AVCodecID) -> String {
    guard let name = avcodec_get_name(id) else { return "unknown" }
    return String(cString: name)
}
