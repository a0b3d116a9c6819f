import CLibAV

// MARK: Encoding and muxing

extension TranscodeJob {
    /// Sends a frame (nil: flush) to the track's encoder and muxes (or queues) every packet that comes out.
    func encode(_ track: Track, _ frame: UnsafeMutablePointer<AVFrame>?) throws(MediaError) {
        let encoder = track.encoder!
        var sent = avcodec_send_frame(encoder.pointer, frame)
        if sent == AVErrorCode.again {
            try receivePackets(track)
            sent = avcodec_send_frame(encoder.pointer, frame)
        }
        if sent < 0 && !(frame == nil && sent == AVErrorCode.endOfFile) {
            throw MediaError.libav(.processing, "\(fileName(inputPath)): the \(encoder.codecName) encoder refused a frame", sent)
        }
        try receivePackets(track)
    }

    private func receivePackets(_ track: Track) throws(MediaError) {
        let encoder = track.encoder!
        while true {
            let received = avcodec_receive_packet(encoder.pointer, encoded.pointer)
            if received == AVErrorCode.again || received == AVErrorCode.endOfFile { return }
            try check(received, .processing, "\(fileName(inputPath)): the \(encoder.codecName) encoder failed")
            let packet = encoded.pointer
            // bwdif marks its frames with a field's duration and encoders pass that on; a constant-rate output's
            // packets last one frame (the muxer needs it for the last sample).
            if track.isVideo { packet.pointee.duration = track.oneFrame }
            if packet.pointee.pts != noPTS {
                track.firstOutputPTS = min(track.firstOutputPTS ?? packet.pointee.pts, packet.pointee.pts)
                let end = packet.pointee.pts + max(packet.pointee.duration, 0)
                track.lastOutputEnd = max(track.lastOutputEnd ?? end, end)
            }
            packet.pointee.stream_index = track.outputStream.pointee.index
            if output.headerWritten {
                try mux(track, packet)
            } else {
                let queued = try Packet()
                av_packet_move_ref(queued.pointer, packet)
                queuedBytes += Int(queued.pointer.pointee.size)
                queue.append(QueuedPacket(track: track, packet: queued))
                if queuedBytes > Self.queueLimitBytes { try openLaggingEncoders() }
            }
        }
    }

    private func mux(_ track: Track, _ packet: UnsafeMutablePointer<AVPacket>) throws(MediaError) {
        av_packet_rescale_ts(packet, track.encoder!.pointer.pointee.time_base, track.outputStream.pointee.time_base)
        try output.write(packet)
    }

    /// A packet of a copied stream: shifted like the decoded streams, then muxed (or queued until the header).
    func copy(_ copied: CopiedStream, _ packet: Packet) throws(MediaError) {
        let pointer = packet.pointer
        if pointer.pointee.pts != noPTS { pointer.pointee.pts -= copied.ptsOffset }
        if pointer.pointee.dts != noPTS { pointer.pointee.dts -= copied.ptsOffset }
        pointer.pointee.stream_index = copied.outputStream.pointee.index
        pointer.pointee.pos = -1
        if output.headerWritten {
            try muxCopied(copied, pointer)
        } else {
            let queued = try Packet()
            av_packet_move_ref(queued.pointer, pointer)
            copiedQueue.append((copied, queued))
        }
        packet.unref()
    }

    private func muxCopied(_ copied: CopiedStream, _ packet: UnsafeMutablePointer<AVPacket>) throws(MediaError) {
        av_packet_rescale_ts(packet, copied.inputTimeBase, copied.outputStream.pointee.time_base)
        try output.write(packet)
    }

    /// The header needs every encoder open (their extradata goes into it). Until then packets wait in `queue`.
    func writeHeaderIfReady() throws(MediaError) {
        guard !output.headerWritten, tracks.allSatisfy({ $0.encoder != nil }) else { return }
        let options = OptionDictionary()
        if container == .mp4 {
            // moov first so players and the verifier can start without reading to the end; keys of `metadata`
            // (original_filename, source_label) as mdta tags, which MP4's fixed tag list would drop.
            options.set("movflags", "+faststart+use_metadata_tags")
        }
        try output.writeHeader(options: options)
        let waiting = queue
        queue = []
        queuedBytes = 0
        for entry in waiting {
            try mux(entry.track, entry.packet.pointer)
        }
        let copied = copiedQueue
        copiedQueue = []
        for entry in copied {
            try muxCopied(entry.stream, entry.packet.pointer)
        }
    }

    /// Too much waits for a stream that has produced no frame yet: open its encoder from the decoder's parameters.
    private func openLaggingEncoders() throws(MediaError) {
        for track in tracks where track.encoder == nil && !track.isVideo {
            try configureAudio(track, parameters: decoderAudioParameters(track))
        }
        if !output.headerWritten {
            throw MediaError(.processing, "\(fileName(inputPath)): more than \(Self.queueLimitBytes >> 20) MiB of output before the video produced a frame")
        }
    }
}
