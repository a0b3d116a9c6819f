import CLibAV

// MARK: Video

extension TranscodeJob {
    func configureVideo(_ track: Track, parameters: VideoParameters, firstFrame: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        // Field order: the stream's when it says; otherwise the first frame's flags.
        var order = FieldOrder(track.stream.pointee.codecpar.pointee.field_order)
        if order == .unknown {
            order = firstFrame.pointee.interlaced_frame != 0 ? (firstFrame.pointee.top_field_first != 0 ? .topFieldFirst : .bottomFieldFirst) : .progressive
        }
        track.fieldOrder = order
        track.deinterlace = order.isInterlaced

        // The first pixel format of the profile the encoder accepts: always 4:2:0, so 4:1:1 DV and 4:2:2 sources
        // are converted here rather than by the encoder's choice.
        let supported = Self.list(videoCodec.pointee.pix_fmts, end: AV_PIX_FMT_NONE).map(\.rawValue)
        let wanted = profile.pixelFormats.map { av_get_pix_fmt($0).rawValue }.filter { $0 >= 0 }
        guard let pixelFormat = wanted.first(where: { supported.isEmpty || supported.contains($0) }) else {
            throw MediaError(.invalidProfile, "\(profile.videoEncoder) supports none of the profile's pixel formats \(profile.pixelFormats.joined(separator: ", "))")
        }
        track.encoderPixelFormat = pixelFormat
        var chain: [String] = []
        if track.deinterlace {
            chain.append(bwdifFilter(track))
        }
        if let canvas = canvasAspect, canvas.isValid,
           canvas != MediaProbe.displayAspect(width: parameters.width, height: parameters.height, sar: parameters.sampleAspectRatio) {
            // Same pixels, the canvas's aspect: the sample aspect that makes width × height show as `canvas`.
            let sar = av_d2q(canvas.value * Double(parameters.height) / Double(parameters.width), 1000)
            chain.append(fitFilter(parameters, width: parameters.width, height: parameters.height, sar: sar))
            notes.append("the aspect changes mid-file; every part is shown in a \(canvas) picture, narrower parts pillarboxed")
        }
        chain.append("format=\(pixelFormatName(pixelFormat))")
        track.filterChain = chain.joined(separator: ",")
        let graph = try makeVideoGraph(track, parameters: parameters, chain: track.filterChain)
        track.graph = graph
        track.videoInput = parameters

        let encoder = try CodecContext(codec: videoCodec)
        let context = encoder.pointer
        context.pointee.width = graph.outputWidth
        context.pointee.height = graph.outputHeight
        context.pointee.pix_fmt = AVPixelFormat(rawValue: graph.outputFormat)
        let sar = graph.outputSampleAspectRatio
        context.pointee.sample_aspect_ratio = sar.isValid ? sar : AVRational(num: 1, den: 1)
        context.pointee.time_base = graph.outputTimeBase
        var rate = graph.outputFrameRate
        if !rate.isValid { rate = av_guess_frame_rate(input.context, track.stream, nil) }
        if !rate.isValid {
            rate = AVRational(num: 25, den: 1)
            notes.append("the video has no frame rate; 25 fps was assumed for rate control")
        }
        context.pointee.framerate = rate
        context.pointee.field_order = AV_FIELD_PROGRESSIVE
        context.pointee.color_range = firstFrame.pointee.color_range
        context.pointee.colorspace = firstFrame.pointee.colorspace
        context.pointee.color_primaries = firstFrame.pointee.color_primaries
        context.pointee.color_trc = firstFrame.pointee.color_trc
        context.pointee.thread_count = 0
        if output.wantsGlobalHeader { context.pointee.flags |= clibav_codec_flag_global_header() }
        var options: [(String, String)] = [("crf", String(profile.crf)), ("preset", profile.preset)]
        options += profile.videoOptions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let unused = try encoder.open(options: options, what: "the \(profile.videoEncoder) encoder")
        if !unused.isEmpty { notes.append("\(profile.videoEncoder) ignored the options \(unused.joined(separator: ", "))") }
        track.encoder = encoder
        track.oneFrame = max(1, av_rescale_q(1, av_inv_q(rate), context.pointee.time_base))

        let stream = track.outputStream
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, context), .output, "cannot describe the video stream")
        stream.pointee.time_base = context.pointee.time_base
        stream.pointee.sample_aspect_ratio = context.pointee.sample_aspect_ratio
        stream.pointee.avg_frame_rate = rate
        stream.pointee.r_frame_rate = rate
        if container == .mp4, let tag = profile.videoCodecTag, tag.utf8.count == 4 {
            let bytes = Array(tag.utf8)
            stream.pointee.codecpar.pointee.codec_tag = clibav_mktag(bytes[0], bytes[1], bytes[2], bytes[3])
        }
        try writeHeaderIfReady()
    }

    /// bwdif at the input's frame rate, fields in the stream's order. Decoders that flag every frame (DV, MPEG-2,
    /// H.264, MJPEG, ...) let bwdif skip frames flagged progressive (film on a DVD); for other codecs (uncompressed
    /// QuickTime captures, whose frames carry no flags) every frame is deinterlaced.
    private func bwdifFilter(_ track: Track) -> String {
        let flagsFrames: Set<UInt32> = [
            AV_CODEC_ID_DVVIDEO.rawValue, AV_CODEC_ID_MPEG2VIDEO.rawValue, AV_CODEC_ID_MPEG1VIDEO.rawValue, AV_CODEC_ID_H264.rawValue,
            AV_CODEC_ID_MJPEG.rawValue, AV_CODEC_ID_HEVC.rawValue, AV_CODEC_ID_VC1.rawValue, AV_CODEC_ID_MPEG4.rawValue,
        ]
        let which = flagsFrames.contains(track.stream.pointee.codecpar.pointee.codec_id.rawValue) ? "interlaced" : "all"
        return "bwdif=mode=send_frame:parity=\(track.fieldOrder == .topFieldFirst ? "tff" : "bff"):deint=\(which)"
    }

    private func makeVideoGraph(_ track: Track, parameters: VideoParameters, chain: String) throws(MediaError) -> FilterGraph {
        let timeBase = track.stream.pointee.time_base
        var arguments = "video_size=\(parameters.width)x\(parameters.height):pix_fmt=\(parameters.format):time_base=\(timeBase.num)/\(timeBase.den):pixel_aspect=\(parameters.sampleAspectRatio.num)/\(parameters.sampleAspectRatio.den)"
        let rate = av_guess_frame_rate(input.context, track.stream, nil)
        if rate.isValid { arguments += ":frame_rate=\(rate.num)/\(rate.den)" }
        return try FilterGraph(isVideo: true, sourceArguments: arguments, filters: chain)
    }

    /// The decoded frames changed size or format mid-stream: flush the old graph into the encoder and build a new
    /// one that scales to what the encoder was opened with.
    func rebuildVideoGraph(_ track: Track, parameters: VideoParameters) throws(MediaError) {
        if let graph = track.graph {
            try graph.send(nil)
            try drainGraph(track)
        }
        let encoder = track.encoder!.pointer.pointee
        var chain: [String] = []
        if track.deinterlace { chain.append(bwdifFilter(track)) }
        chain.append(fitFilter(parameters, width: encoder.width, height: encoder.height, sar: encoder.sample_aspect_ratio))
        chain.append("format=\(pixelFormatName(track.encoderPixelFormat))")
        track.graph = nil
        track.graph = try makeVideoGraph(track, parameters: parameters, chain: chain.joined(separator: ","))
        track.videoInput = parameters
        notes.append("the video changed to \(parameters.width)x\(parameters.height) \(pixelFormatName(parameters.format)) mid-stream and was fitted into \(encoder.width)x\(encoder.height) with its aspect kept")
    }

    /// Scales a frame of `parameters` into a `width`×`height` canvas of sample aspect `sar` keeping the frame's
    /// display aspect, centred, with black bars where the aspects differ (pillarbox or letterbox).
    func fitFilter(_ parameters: VideoParameters, width: Int32, height: Int32, sar: AVRational) -> String {
        let frameAspect = MediaProbe.displayAspect(width: parameters.width, height: parameters.height, sar: parameters.sampleAspectRatio).value
        let sampleAspect = sar.isValid ? Double(sar.num) / Double(sar.den) : 1
        let canvasAspect = Double(width) / Double(height) * sampleAspect
        func even(_ value: Double) -> Int32 { max(2, Int32((value / 2).rounded()) * 2) }
        var fittedWidth = width, fittedHeight = height
        if frameAspect > 0, abs(frameAspect - canvasAspect) > 0.001 {
            if frameAspect < canvasAspect {
                fittedWidth = min(width, even(Double(height) * frameAspect / sampleAspect))
            } else {
                fittedHeight = min(height, even(Double(width) * sampleAspect / frameAspect))
            }
        }
        let sarText = sar.isValid ? "\(sar.num)/\(sar.den)" : "1"
        return "scale=\(fittedWidth):\(fittedHeight),setsar=1,pad=\(width):\(height):(ow-iw)/2:(oh-ih)/2:black,setsar=\(sarText)"
    }

    func encodeVideo(_ track: Track, _ frame: UnsafeMutablePointer<AVFrame>, from timeBase: AVRational) throws(MediaError) {
        let encoder = track.encoder!.pointer
        var pts = av_rescale_q(frame.pointee.pts, timeBase, encoder.pointee.time_base)
        // The encoder and muxer need strictly increasing timestamps; broken inputs do not always have them.
        if let last = track.lastEncodedPTS, pts <= last { pts = last + 1 }
        track.lastEncodedPTS = pts
        frame.pointee.pts = pts
        frame.pointee.pict_type = AV_PICTURE_TYPE_NONE
        frame.pointee.pkt_duration = track.oneFrame
        track.framesEncoded += 1
        try encode(track, frame)
    }
}
