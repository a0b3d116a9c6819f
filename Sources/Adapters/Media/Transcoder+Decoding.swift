import CLibAV

// MARK: The loop

extension TranscodeJob {
    private func checkDeadline(_ during: String) throws(MediaError) {
        if deadline.expired {
            throw MediaError(.timeLimitExceeded, "\(fileName(inputPath)): time limit reached while \(during) (\(videoTrack.framesEncoded) frames done)")
        }
    }

    func transcodeAll() throws(MediaError) {
        while true {
            try checkDeadline("transcoding")
            let read = input.read(into: packet)
            if read == AVErrorCode.endOfFile { break }
            if read == AVErrorCode.again { continue }
            if read < 0 {
                try checkDeadline("reading")
                let at = videoTrack.meter.duration.map { " after \(Int($0)) s" } ?? ""
                readFailure = "reading stopped\(at): \(LibAV.errorText(read)); the rest of the input was skipped"
                break
            }
            if let copied = copiedByIndex[Int(packet.pointer.pointee.stream_index)] {
                try copy(copied, packet)
                continue
            }
            guard let track = tracksByIndex[Int(packet.pointer.pointee.stream_index)] else {
                packet.unref()
                continue
            }
            if packet.pointer.pointee.flags & clibav_pkt_flag_corrupt() != 0 { corruptPackets += 1 }
            try decode(track, packet.pointer)
            packet.unref()
        }
        // End of input: drain decoders, make sure every encoder is open, then drain filters and encoders.
        for track in tracks { try decode(track, nil) }
        for track in tracks where track.encoder == nil {
            if track.isVideo {
                throw MediaError(.notVideo, "\(fileName(inputPath)): no video frame could be decoded" + (undecodablePackets > 0 ? " (\(undecodablePackets) broken packets: \(LibAV.errorText(lastDecodeError)))" : ""))
            }
            notes.append("audio stream \(track.inputIndex) had no decodable audio; its output stream is empty")
            try configureAudio(track, parameters: decoderAudioParameters(track))
        }
        try writeHeaderIfReady()
        for track in tracks {
            try checkDeadline("finishing")
            if let graph = track.graph {
                try graph.send(nil)
                try drainGraph(track)
            }
            if !track.isVideo { try encodeBufferedAudio(track, final: true) }
            try encode(track, nil)
        }
        if !recordingStarts.isEmpty {
            notes.append("the timestamps restart \(recordingStarts.count) time(s) (separate recordings); they play one after another, each a chapter")
            if input.chapterCount == 0 && chapterMarks.isEmpty {
                let end = Double(videoTrack.lastOutputEnd ?? 0) * videoTrack.encoder!.pointer.pointee.time_base.doubleValue
                addChapters(([0] + recordingStarts).map { ChapterMark(start: $0) }, title: "Recording", end: end)
            }
        }
        try output.writeTrailer()
    }

    /// Sends a packet (nil: end of stream) to the track's decoder and handles every frame that comes out.
    private func decode(_ track: Track, _ packet: UnsafeMutablePointer<AVPacket>?) throws(MediaError) {
        var sent = avcodec_send_packet(track.decoder.pointer, packet)
        if sent == AVErrorCode.again {
            // The decoder wants its frames taken first (cannot happen when every send is drained, but cheap).
            try receiveFrames(track)
            sent = avcodec_send_packet(track.decoder.pointer, packet)
        }
        if sent < 0 && sent != AVErrorCode.endOfFile {
            // A broken packet: skip it (the decoder conceals what it can) and report the damage.
            undecodablePackets += 1
            lastDecodeError = sent
        }
        try receiveFrames(track)
    }

    private func receiveFrames(_ track: Track) throws(MediaError) {
        while true {
            let received = avcodec_receive_frame(track.decoder.pointer, decoded.pointer)
            if received == AVErrorCode.again || received == AVErrorCode.endOfFile { return }
            if received < 0 {
                undecodablePackets += 1
                lastDecodeError = received
                return
            }
            if decoded.pointer.pointee.decode_error_flags != 0 || decoded.pointer.pointee.flags & clibav_frame_flag_corrupt() != 0 {
                concealedFrames += 1
            }
            track.meter.add(decoded.pointer)
            try handleDecoded(track, decoded.pointer)
            decoded.unref()
        }
    }

    private func handleDecoded(_ track: Track, _ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        // Timestamps: best effort, never missing, relative to the input's start.
        var pts = frame.pointee.best_effort_timestamp
        if pts == noPTS {
            if let last = track.lastInputPTS {
                let step = track.isVideo
                    ? track.meter.defaultFrameDuration
                    : av_rescale_q(Int64(frame.pointee.nb_samples), AVRational(num: 1, den: max(1, frame.pointee.sample_rate)), track.stream.pointee.time_base)
                pts = last + step
            } else {
                pts = track.ptsOffset
            }
        }
        if let last = track.lastInputPTS, Discontinuity.between(last, pts, timeBase: track.stream.pointee.time_base) {
            // A new recording: go on right after the previous frame, whatever the camera's clock says.
            let step = track.isVideo
                ? track.meter.defaultFrameDuration
                : av_rescale_q(Int64(frame.pointee.nb_samples), AVRational(num: 1, den: max(1, frame.pointee.sample_rate)), track.stream.pointee.time_base)
            let continued = last + step - track.ptsOffset + track.segmentShift
            track.segmentShift = continued - (pts - track.ptsOffset)
            if track.isVideo { recordingStarts.append(Double(continued) * track.stream.pointee.time_base.doubleValue) }
        }
        track.lastInputPTS = pts
        frame.pointee.pts = pts - track.ptsOffset + track.segmentShift

        if track.isVideo {
            // DV and MPEG-2 carry the aspect in every frame or sequence header, and a camcorder switched to 16:9
            // mid-tape changes it there; the stream's value is only what the demuxer saw first or last. Other
            // containers may override the codec's aspect on purpose, so libav's choice stands for them.
            let codec = track.stream.pointee.codecpar.pointee.codec_id
            let perFrame = (codec == AV_CODEC_ID_DVVIDEO || codec == AV_CODEC_ID_MPEG2VIDEO) && frame.pointee.sample_aspect_ratio.isValid
            let sar = perFrame ? frame.pointee.sample_aspect_ratio : av_guess_sample_aspect_ratio(input.context, track.stream, frame)
            frame.pointee.sample_aspect_ratio = sar.isValid ? sar : AVRational(num: 1, den: 1)
            let parameters = VideoParameters(width: frame.pointee.width, height: frame.pointee.height, format: frame.pointee.format, sampleAspectRatio: frame.pointee.sample_aspect_ratio)
            if track.encoder == nil {
                try configureVideo(track, parameters: parameters, firstFrame: frame)
            } else if parameters != track.videoInput {
                try rebuildVideoGraph(track, parameters: parameters)
            }
        } else {
            try normaliseLayout(frame)
            // Audio goes through the graph in 1/sample_rate, as the ffmpeg CLI does.
            frame.pointee.pts = av_rescale_q(frame.pointee.pts, track.stream.pointee.time_base, AVRational(num: 1, den: frame.pointee.sample_rate))
            let parameters = AudioParameters(format: frame.pointee.format, sampleRate: frame.pointee.sample_rate, layoutName: layoutName(&frame.pointee.ch_layout), channels: frame.pointee.ch_layout.nb_channels)
            if track.encoder == nil {
                try configureAudio(track, parameters: parameters)
            } else if parameters != track.audioInput {
                try rebuildAudioGraph(track, parameters: parameters)
            }
        }
        try track.graph!.send(frame)
        try drainGraph(track)
    }

    func drainGraph(_ track: Track) throws(MediaError) {
        guard let graph = track.graph else { return }
        while true {
            let received = graph.receive(into: filtered.pointer)
            if received == AVErrorCode.again || received == AVErrorCode.endOfFile { return }
            try check(received, .processing, "\(fileName(inputPath)): filtering failed (\(graph.description))")
            if track.isVideo {
                try encodeVideo(track, filtered.pointer, from: graph.outputTimeBase)
            } else {
                try bufferAudio(track, filtered.pointer, from: graph.outputTimeBase)
            }
            filtered.unref()
        }
    }
}
