import CLibAV

// MARK: Setup

extension TranscodeJob {
    func selectStreams() throws(MediaError) {
        guard let videoIndex = MediaProbe.mainVideoIndex(of: input) else {
            let found = (0..<input.streamCount).map { codecName(input.stream($0).pointee.codecpar.pointee.codec_id) }
            throw MediaError(.notVideo, "\(fileName(inputPath)) has no video stream" + (found.isEmpty ? "" : " (streams: \(found.joined(separator: ", ")))"))
        }
        var audioIndices: [Int] = []
        var subtitleIndices: [Int] = []
        for index in 0..<input.streamCount {
            let parameters = input.stream(index).pointee.codecpar.pointee
            switch parameters.codec_type {
            case AVMEDIA_TYPE_AUDIO:
                if avcodec_find_decoder(parameters.codec_id) == nil {
                    notes.append("audio stream \(index) (\(codecName(parameters.codec_id))) has no decoder in this libav build and was dropped")
                } else if parameters.sample_rate <= 0 || parameters.ch_layout.nb_channels <= 0 {
                    notes.append("audio stream \(index) (\(codecName(parameters.codec_id))) has no sample rate or channels and was dropped")
                } else {
                    audioIndices.append(index)
                }
            case AVMEDIA_TYPE_VIDEO where index != videoIndex:
                notes.append("extra video stream \(index) (\(codecName(parameters.codec_id))) was dropped")
            case AVMEDIA_TYPE_SUBTITLE:
                subtitleIndices.append(index)
            default:
                break
            }
        }

        // MP4 for the profile unless it cannot hold one of the encoders' codecs.
        if let format = av_guess_format(container.muxerName, nil, nil) {
            let holdsVideo = avformat_query_codec(format, videoCodec.pointee.id, FF_COMPLIANCE_NORMAL) == 1
            let holdsAudio = audioIndices.isEmpty || avformat_query_codec(format, audioCodec.pointee.id, FF_COMPLIANCE_NORMAL) == 1
            if !(holdsVideo && holdsAudio), container != profile.fallbackContainer {
                notes.append("\(container.rawValue) cannot hold \(holdsVideo ? profile.audioEncoder : profile.videoEncoder); wrote \(profile.fallbackContainer.rawValue)")
                container = profile.fallbackContainer
            }
        }
        // Subtitles are copied as they are (bitmaps stay bitmaps). MP4 holds them badly or not at all (players ignore
        // DVD subpictures in MP4, and text needs converting to mov_text), so any subtitle means Matroska.
        if !subtitleIndices.isEmpty && container == .mp4 {
            notes.append("mp4 cannot carry the \(subtitleIndices.count) subtitle stream(s) as they are; wrote matroska")
            container = .matroska
        }
        output = try OutputFile(path: outputPath, formatName: container.muxerName, deadline: deadline)

        for index in [videoIndex] + audioIndices {
            let stream = input.stream(index)
            let decoder: CodecContext
            do {
                decoder = try openDecoder(for: stream, in: input)
            } catch {
                if index == videoIndex { throw error }
                notes.append("audio stream \(index) was dropped: \(error.message)")
                continue
            }
            let outputStream = try output.addStream()
            for (key, value) in entries(of: stream.pointee.metadata) where Self.keepsStreamMetadata(key) {
                av_dict_set(&outputStream.pointee.metadata, key, value, 0)
            }
            outputStream.pointee.disposition = stream.pointee.disposition & Int32(AV_DISPOSITION_DEFAULT)
            let track = Track(inputIndex: index, stream: stream, decoder: decoder, outputStream: outputStream, input: input)
            tracks.append(track)
            tracksByIndex[index] = track
            if index == videoIndex { videoTrack = track }
        }
        try addCopiedSubtitles(subtitleIndices)
        copyMetadataAndChapters()
    }

    private func addCopiedSubtitles(_ indices: [Int]) throws(MediaError) {
        guard let format = av_guess_format(container.muxerName, nil, nil) else { return }
        for index in indices {
            let stream = input.stream(index)
            let codec = stream.pointee.codecpar.pointee.codec_id
            guard avformat_query_codec(format, codec, FF_COMPLIANCE_NORMAL) == 1 else {
                notes.append("subtitle stream \(index) (\(codecName(codec))) cannot be stored in \(container.rawValue) and was dropped")
                continue
            }
            let outputStream = try output.addStream()
            try check(avcodec_parameters_copy(outputStream.pointee.codecpar, stream.pointee.codecpar), .output, "\(fileName(outputPath)): cannot copy subtitle stream \(index)")
            outputStream.pointee.codecpar.pointee.codec_tag = 0
            outputStream.pointee.time_base = stream.pointee.time_base
            outputStream.pointee.disposition = stream.pointee.disposition
            for (key, value) in entries(of: stream.pointee.metadata) where Self.keepsStreamMetadata(key) {
                av_dict_set(&outputStream.pointee.metadata, key, value, 0)
            }
            let start = input.context.pointee.start_time
            copiedByIndex[index] = CopiedStream(
                inputIndex: index, inputTimeBase: stream.pointee.time_base, outputStream: outputStream,
                ptsOffset: start == noPTS ? 0 : av_rescale_q(start, timeBaseQ, stream.pointee.time_base))
        }
    }

    /// Container statistics (Matroska's DURATION, BPS, ...) and encoder tags describe the old file; the rest is kept.
    private static func keepsStreamMetadata(_ key: String) -> Bool {
        let upper = key.uppercased()
        return !(upper == "ENCODER" || upper == "DURATION" || upper == "BPS" || upper.hasPrefix("NUMBER_OF_")
            || upper.hasPrefix("_STATISTICS_") || upper == "HANDLER_NAME" || upper == "VENDOR_ID")
    }

    private func copyMetadataAndChapters() {
        let context = output.context
        let dropped: Set<String> = ["encoder", "major_brand", "minor_version", "compatible_brands"]
        for (key, value) in input.metadata where !dropped.contains(key.lowercased()) {
            av_dict_set(&context.pointee.metadata, key, value, 0)
        }
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            av_dict_set(&context.pointee.metadata, key, value, 0)
        }
        let count = input.chapterCount
        if count == 0 && !chapterMarks.isEmpty {
            addChapters(chapterMarks, title: "Chapter", end: chapterEnd)
            return
        }
        guard count > 0, let storage = av_calloc(count, MemoryLayout<UnsafeMutablePointer<AVChapter>?>.stride) else { return }
        let chapters = storage.assumingMemoryBound(to: UnsafeMutablePointer<AVChapter>?.self)
        context.pointee.chapters = chapters
        context.pointee.nb_chapters = 0
        for index in 0..<count {
            let source = input.chapter(index)
            guard let raw = av_mallocz(MemoryLayout<AVChapter>.size) else { break }
            let chapter = raw.assumingMemoryBound(to: AVChapter.self)
            let offset = av_rescale_q(input.startTime, timeBaseQ, source.pointee.time_base)
            chapter.pointee.id = source.pointee.id
            chapter.pointee.time_base = source.pointee.time_base
            chapter.pointee.start = max(0, source.pointee.start - offset)
            chapter.pointee.end = max(chapter.pointee.start, source.pointee.end - offset)
            av_dict_copy(&chapter.pointee.metadata, source.pointee.metadata, 0)
            chapters[index] = chapter
            context.pointee.nb_chapters = UInt32(index + 1)
        }
    }

    /// Chapters at `marks` (seconds), in milliseconds, each lasting to the next (the last to the end of the input),
    /// titled by the mark or "<title> 1", "<title> 2", ….
    func addChapters(_ marks: [ChapterMark], title: String, end endSeconds: Double? = nil) {
        let context = output.context
        let end = Int64(((endSeconds ?? input.duration ?? marks.last?.start ?? 0) * 1000).rounded())
        let marks = marks.filter { Int64(($0.start * 1000).rounded()) < max(end, 1) }
        let starts = marks.map { Int64(($0.start * 1000).rounded()) }
        guard !starts.isEmpty, let storage = av_calloc(starts.count, MemoryLayout<UnsafeMutablePointer<AVChapter>?>.stride) else { return }
        let chapters = storage.assumingMemoryBound(to: UnsafeMutablePointer<AVChapter>?.self)
        context.pointee.chapters = chapters
        context.pointee.nb_chapters = 0
        for (index, start) in starts.enumerated() {
            guard let raw = av_mallocz(MemoryLayout<AVChapter>.size) else { break }
            let chapter = raw.assumingMemoryBound(to: AVChapter.self)
            chapter.pointee.id = Int64(index + 1)
            chapter.pointee.time_base = AVRational(num: 1, den: 1000)
            chapter.pointee.start = start
            chapter.pointee.end = index + 1 < starts.count ? starts[index + 1] : max(end, start + 1)
            av_dict_set(&chapter.pointee.metadata, "title", marks[index].title ?? "\(title) \(index + 1)", 0)
            chapters[index] = chapter
            context.pointee.nb_chapters = UInt32(index + 1)
        }
    }
}
