import CLibAV

// MARK: Audio

extension TranscodeJob {
    func normaliseLayout(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        // PCM in AVI and friends has a channel count but no layout: use the default layout for that count, as the
        // ffmpeg CLI does.
        if frame.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
            let channels = frame.pointee.ch_layout.nb_channels
            av_channel_layout_uninit(&frame.pointee.ch_layout)
            av_channel_layout_default(&frame.pointee.ch_layout, channels)
        }
    }

    func layoutName(_ layout: UnsafePointer<AVChannelLayout>) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        if av_channel_layout_describe(layout, &buffer, buffer.count) < 0 { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func decoderAudioParameters(_ track: Track) -> AudioParameters {
        let decoder = track.decoder.pointer.pointee
        var layout = AVChannelLayout()
        defer { av_channel_layout_uninit(&layout) }
        if decoder.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || decoder.ch_layout.nb_channels == 0 {
            av_channel_layout_default(&layout, max(1, decoder.ch_layout.nb_channels))
        } else {
            var source = decoder.ch_layout
            av_channel_layout_copy(&layout, &source)
        }
        var format = decoder.sample_fmt.rawValue
        if format < 0 { format = AV_SAMPLE_FMT_FLTP.rawValue }
        return AudioParameters(format: format, sampleRate: max(8000, decoder.sample_rate), layoutName: layoutName(&layout), channels: layout.nb_channels)
    }

    func configureAudio(_ track: Track, parameters: AudioParameters) throws(MediaError) {
        // Sample rate: the source's when the encoder takes it, else the nearest it has (Opus: 48 kHz).
        let rates = Self.list(audioCodec.pointee.supported_samplerates, end: 0)
        var rate = parameters.sampleRate
        if !rates.isEmpty, !rates.contains(rate) {
            rate = rates.filter { $0 >= parameters.sampleRate }.min() ?? rates.max()!
            notes.append("audio stream \(track.inputIndex): \(profile.audioEncoder) cannot encode \(parameters.sampleRate) Hz; resampled to \(rate) Hz")
        }
        // Channel layout: the source's when the encoder takes it, else its default layout for the same count,
        // else stereo.
        let source = ChannelLayout()
        av_channel_layout_from_string(&source.value, parameters.layoutName)
        if source.channels != parameters.channels {
            av_channel_layout_uninit(&source.value)
            av_channel_layout_default(&source.value, parameters.channels)
        }
        let target: ChannelLayout
        if let layouts = audioCodec.pointee.ch_layouts {
            var supported: [UnsafePointer<AVChannelLayout>] = []
            var cursor = layouts
            while cursor.pointee.nb_channels != 0 {
                supported.append(cursor)
                cursor += 1
            }
            let sameCount = ChannelLayout(defaultFor: source.channels)
            let stereo = ChannelLayout(defaultFor: 2)
            if supported.contains(where: { av_channel_layout_compare($0, &source.value) == 0 }) {
                target = source
            } else if let match = supported.first(where: { av_channel_layout_compare($0, &sameCount.value) == 0 }) {
                target = try ChannelLayout(copying: match)
            } else if let match = supported.first(where: { $0.pointee.nb_channels == source.channels }) {
                target = try ChannelLayout(copying: match)
            } else {
                target = stereo
                notes.append("audio stream \(track.inputIndex): \(profile.audioEncoder) cannot encode \(source.name); downmixed to stereo")
            }
        } else {
            target = source
        }
        let formats = Self.list(audioCodec.pointee.sample_fmts, end: AV_SAMPLE_FMT_NONE).map(\.rawValue)
        let sampleFormat = formats.first(where: { $0 == AV_SAMPLE_FMT_FLTP.rawValue || $0 == AV_SAMPLE_FMT_FLT.rawValue }) ?? formats.first ?? AV_SAMPLE_FMT_FLTP.rawValue
        track.encoderSampleRate = rate
        track.encoderLayoutName = target.name
        track.encoderSampleFormat = sampleFormat
        track.filterChain = "aformat=sample_fmts=\(sampleFormatName(sampleFormat)):sample_rates=\(rate):channel_layouts=\(target.name)"
        track.graph = try makeAudioGraph(parameters: parameters, chain: track.filterChain)
        track.audioInput = parameters

        let encoder = try CodecContext(codec: audioCodec)
        let context = encoder.pointer
        context.pointee.sample_fmt = AVSampleFormat(rawValue: sampleFormat)
        context.pointee.sample_rate = rate
        try target.copy(to: &context.pointee.ch_layout)
        context.pointee.bit_rate = Int64(profile.audioBitRatePerChannel) * Int64(target.channels)
        context.pointee.time_base = AVRational(num: 1, den: rate)
        context.pointee.thread_count = 0
        if output.wantsGlobalHeader { context.pointee.flags |= clibav_codec_flag_global_header() }
        let unused = try encoder.open(options: [], what: "the \(profile.audioEncoder) encoder (\(rate) Hz, \(target.name))")
        if !unused.isEmpty { notes.append("\(profile.audioEncoder) ignored the options \(unused.joined(separator: ", "))") }
        track.encoder = encoder
        let variable = audioCodec.pointee.capabilities & clibav_codec_cap_variable_frame_size() != 0
        track.audioFrameSize = variable ? 0 : context.pointee.frame_size
        track.fifo = try AudioFifo(format: context.pointee.sample_fmt, channels: target.channels)

        let stream = track.outputStream
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, context), .output, "cannot describe audio stream \(track.inputIndex)")
        stream.pointee.time_base = context.pointee.time_base
        try writeHeaderIfReady()
    }

    private func makeAudioGraph(parameters: AudioParameters, chain: String) throws(MediaError) -> FilterGraph {
        let arguments = "time_base=1/\(parameters.sampleRate):sample_rate=\(parameters.sampleRate):sample_fmt=\(sampleFormatName(parameters.format)):channel_layout=\(parameters.layoutName)"
        return try FilterGraph(isVideo: false, sourceArguments: arguments, filters: chain)
    }

    func rebuildAudioGraph(_ track: Track, parameters: AudioParameters) throws(MediaError) {
        if let graph = track.graph {
            try graph.send(nil)
            try drainGraph(track)
        }
        track.graph = nil
        track.graph = try makeAudioGraph(parameters: parameters, chain: track.filterChain)
        track.audioInput = parameters
        notes.append("audio stream \(track.inputIndex) changed to \(parameters.sampleRate) Hz \(parameters.layoutName) mid-stream and was resampled")
    }

    /// Filtered audio goes into a FIFO that hands the encoder frames of exactly its frame size (AAC: 1024).
    func bufferAudio(_ track: Track, _ frame: UnsafeMutablePointer<AVFrame>, from timeBase: AVRational) throws(MediaError) {
        if track.nextAudioPTS == nil, frame.pointee.pts != noPTS {
            track.nextAudioPTS = av_rescale_q(frame.pointee.pts, timeBase, track.encoder!.pointer.pointee.time_base)
        }
        try track.fifo!.write(frame)
        try encodeBufferedAudio(track, final: false)
    }

    func encodeBufferedAudio(_ track: Track, final: Bool) throws(MediaError) {
        guard let fifo = track.fifo, let encoder = track.encoder?.pointer else { return }
        let size = track.audioFrameSize > 0 ? track.audioFrameSize : max(fifo.count, 1)
        while fifo.count >= size || (final && fifo.count > 0) {
            let count = min(size, fifo.count)
            let chunk = audioChunk.pointer
            chunk.pointee.format = encoder.pointee.sample_fmt.rawValue
            chunk.pointee.sample_rate = encoder.pointee.sample_rate
            try check(av_channel_layout_copy(&chunk.pointee.ch_layout, &encoder.pointee.ch_layout), .processing, "cannot copy a channel layout")
            try fifo.read(into: chunk, count: count)
            let pts = track.nextAudioPTS ?? 0
            chunk.pointee.pts = pts
            track.nextAudioPTS = pts + Int64(count)
            track.framesEncoded += 1
            try encode(track, chunk)
            audioChunk.unref()
        }
    }
}
