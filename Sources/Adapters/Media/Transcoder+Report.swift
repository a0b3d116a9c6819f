import CLibAV

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Report

extension TranscodeJob {
    func finish() throws(MediaError) -> TranscodeReport {
        let videoEncoder = videoTrack.encoder!.pointer.pointee
        let outputVideoTimeBase = videoEncoder.time_base
        let outputDuration = Double((videoTrack.lastOutputEnd ?? 0) - (videoTrack.firstOutputPTS ?? 0)) * outputVideoTimeBase.doubleValue
        let sar = videoEncoder.sample_aspect_ratio
        let audioTracks = tracks.filter { !$0.isVideo }
        let audioCodecs = audioTracks.map { codecName($0.encoder!.pointer.pointee.codec_id) }
        var settings: [String: String] = [
            "profile": profile.name,
            "container": container.rawValue,
            "video_encoder": profile.videoEncoder,
            "crf": String(profile.crf),
            "preset": profile.preset,
            "pix_fmt": pixelFormatName(videoTrack.encoderPixelFormat),
            "video_filter": videoTrack.filterChain,
            "frame_rate": "\(videoEncoder.framerate.num)/\(videoEncoder.framerate.den)",
            "audio_encoder": profile.audioEncoder,
        ]
        for (key, value) in profile.videoOptions { settings[key] = value }
        if let tag = profile.videoCodecTag, container == .mp4 { settings["video_tag"] = tag }
        if container == .mp4 { settings["movflags"] = "+faststart+use_metadata_tags" }
        if !audioTracks.isEmpty {
            settings["audio"] = audioTracks.map { track in
                let context = track.encoder!.pointer.pointee
                return "\(track.encoderSampleRate) Hz \(track.encoderLayoutName) \(context.bit_rate / 1000) kb/s"
            }.joined(separator: "; ")
        }

        var damage: [String] = []
        if undecodablePackets > 0 {
            damage.append("\(undecodablePackets) packets could not be decoded and were skipped (\(LibAV.errorText(lastDecodeError)))")
        }
        if corruptPackets > 0 { damage.append("\(corruptPackets) packets were flagged corrupt by the demuxer") }
        if concealedFrames > 0 { damage.append("\(concealedFrames) frames had errors the decoder concealed") }
        if let readFailure { damage.append(readFailure) }
        if let decodedVideo = videoTrack.meter.duration,
            let truncation = MediaProbe.truncation(of: videoTrack.stream, in: input, decodedVideo: decodedVideo) {
            damage.append(truncation)
        }

        var source = MediaProbe.mediaInfo(of: input, size: inputSize)
        for position in source.streams.indices {
            guard let track = tracksByIndex[source.streams[position].index] else { continue }
            source.streams[position].decodedDuration = track.meter.duration
            source.streams[position].decodedFrames = track.meter.decodedCount
            if let frameDuration = track.meter.frameDuration { source.streams[position].frameDuration = frameDuration }
            if track.isVideo { source.streams[position].fieldOrder = track.fieldOrder }
        }

        output.close()
        let outputSize = Self.fileSize(outputPath)
        return TranscodeReport(
            profile: profile, settings: settings, container: container, videoCodec: codecName(videoEncoder.codec_id),
            audioCodecs: audioCodecs, duration: outputDuration, frameCount: videoTrack.framesEncoded,
            width: Int(videoEncoder.width), height: Int(videoEncoder.height), sampleAspectRatio: Rational(sar),
            displayAspectRatio: MediaProbe.displayAspect(width: videoEncoder.width, height: videoEncoder.height, sar: sar),
            deinterlaced: videoTrack.deinterlace, sourceFieldOrder: videoTrack.fieldOrder, audioStreamCount: audioTracks.count,
            inputSize: inputSize, outputSize: outputSize, source: source, damage: damage, notes: notes, elapsed: .zero)
    }

    private static func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    static func list<T: Equatable>(_ pointer: UnsafePointer<T>?, end: T) -> [T] {
        guard var cursor = pointer else { return [] }
        var result: [T] = []
        while cursor.pointee != end {
            result.append(cursor.pointee)
            cursor += 1
        }
        return result
    }
}
