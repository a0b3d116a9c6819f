import Catalog
import Foundation
import PipelineCore
import Testing
import TestSupport
import SystemIO

/// A DVD-Video folder made at test time (ffmpeg, spumux, dvdauthor), its title cut into two VOB files the way a
/// disc cuts it at 1 GiB: every file of the disc is archived as it is, and the title set is transcoded once, from
/// both parts joined, with both audio tracks and the subpicture subtitles.
@Suite("transcoder worker: DVD-Video")
struct DVDVideoWorkerTests {
    /// Authors `<directory>/DVD/VIDEO_TS` with one 6-second PAL title (MPEG-2; AC-3 English, MP2 German and LPCM
    /// French; one subpicture stream; chapters at 0, 2 and 4 s), then cuts VTS_01_1.VOB in two at a sector boundary.
    /// Returns the title's VOB bytes before the cut.
    static func makeDisc(in directory: String, work: String) async throws -> [UInt8] {
        func run(_ arguments: [String], environment: [String: String] = [:]) async throws {
            let result = try await Subprocess.run("/usr/bin/env", environment.map { "\($0.key)=\($0.value)" } + arguments)
            #expect(result.status == 0, "\(arguments.first ?? ""): \(result.output.suffix(1500))")
        }
        let title = work + "/title.mpg"
        try await run([
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000", "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "2:a", "-t", "6",
            "-target", "pal-dvd", "-c:a:0", "ac3", "-c:a:1", "mp2", "-c:a:2", "pcm_dvd", "-b:a:0", "192k", "-b:a:1", "192k", "-ac", "2",
            "-aspect", "16:9", title,
        ])
        let image = work + "/line.png"
        try await run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=white:s=320x64",
                       "-frames:v", "1", "-pix_fmt", "rgba", image])
        let spu = work + "/subtitles.xml"
        try """
            <subpictures><stream>
              <spu start="00:00:01.00" end="00:00:02.50" image="\(image)" xoffset="200" yoffset="480"/>
              <spu start="00:00:04.00" end="00:00:05.00" image="\(image)" xoffset="200" yoffset="480"/>
            </stream></subpictures>
            """.write(toFile: spu, atomically: true, encoding: .utf8)
        let withSubtitles = work + "/title-sub.mpg"
        try await run(["sh", "-c", "spumux -m dvd '\(spu)' < '\(title)' > '\(withSubtitles)'"])
        let disc = directory + "/DVD"
        try await run(["dvdauthor", "-o", disc, "-t", "-c", "0,2,4", "-a", "ac3+en,mp2+de,pcm+fr", "-s", "en", withSubtitles], environment: ["VIDEO_FORMAT": "PAL"])
        try await run(["dvdauthor", "-o", disc, "-T"], environment: ["VIDEO_FORMAT": "PAL"])

        let first = disc + "/VIDEO_TS/VTS_01_1.VOB"
        let whole = Array(try Data(contentsOf: URL(fileURLWithPath: first)))
        let cut = (whole.count / 2048 / 2) * 2048
        try Data(whole[..<cut]).write(to: URL(fileURLWithPath: first))
        try Data(whole[cut...]).write(to: URL(fileURLWithPath: disc + "/VIDEO_TS/VTS_01_2.VOB"))
        return whole
    }

    @Test("a title cut into VTS_01_1.VOB and VTS_01_2.VOB is transcoded once, joined (full length, AC-3, MPEG and LPCM tracks, subtitles, the IFO's chapters, MKV) as VIDEO_TS/VTS_01.mkv; every disc file comes back byte for byte")
    func titleSetJoined() async throws {
        try await PipelineHarness.with(.file) { harness in
            let whole = try await Self.makeDisc(in: harness.source.path, work: harness.work.path)
            let originals = try Self.files(under: harness.source.path)
            #expect(originals.keys.contains("DVD/VIDEO_TS/VTS_01_2.VOB") && originals.keys.contains("DVD/VIDEO_TS/VTS_01_0.IFO"), "\(originals.keys.sorted())")

            let upload = try await harness.upload(label: "DVD 7")
            #expect(upload.status == 0, "\(upload.output)")
            let rows = try await Self.transcodeAndArchive(harness)
            let first = try #require(rows.first { $0.path == "DVD/VIDEO_TS/VTS_01_1.VOB" })
            let second = try #require(rows.first { $0.path == "DVD/VIDEO_TS/VTS_01_2.VOB" })
            let title = try #require(rows.first { $0.path == "DVD/VIDEO_TS/VTS_01.mkv" }, "\(rows.map(\.path))")
            #expect(title.kind == "regular" && first.kind == "video" && second.kind == "video")
            #expect(rows.filter { $0.path.hasSuffix(".mkv") || $0.path.hasSuffix(".mp4") }.count == 1, "one transcode for the whole title set")
            #expect(try await harness.scalar("SELECT (details->>'transcode_file_id')::bigint FROM objectstoragefiles WHERE id = \(first.id)", as: Int64.self) == title.id)
            #expect(try await harness.scalar("SELECT (details->>'dvd_title_set_of')::bigint FROM objectstoragefiles WHERE id = \(second.id)", as: Int64.self) == first.id)
            #expect(try await harness.scalar("SELECT details->'dvd_title_set'->'parts' = jsonb_build_array(\(first.id)::bigint, \(second.id)::bigint) FROM objectstoragefiles WHERE id = \(first.id)", as: Bool.self) == true)
            #expect(try await harness.scalar("SELECT details->'transcode'->>'container' FROM objectstoragefiles WHERE id = \(title.id)", as: String.self) == "matroska")
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty, "raw or transcoded copies left in staging")

            // The way back: every file of the disc byte for byte, and the joined title beside them.
            let restored = try await Self.restore(harness, source: "DVD 7", expecting: originals)
            let joinedParts = (restored["DVD 7/DVD/VIDEO_TS/VTS_01_1.VOB"] ?? []) + (restored["DVD 7/DVD/VIDEO_TS/VTS_01_2.VOB"] ?? [])
            #expect(joinedParts == whole, "the two parts are the title's VOB cut in two")
            let transcode = try #require(restored["DVD 7/DVD/VIDEO_TS/VTS_01.mkv"], "\(restored.keys.sorted())")
            let copy = harness.work.path + "/VTS_01.mkv"
            _ = FileManager.default.createFile(atPath: copy, contents: Data(transcode))
            // AC-3, MPEG and LPCM tracks; the transcode covers both parts (6 s). The chapters dvdauthor wrote into
            // the IFO (at 0, 2 and 4 s, moved to the nearest GOP) reach the transcode.
            let recorded = try await harness.scalar(
                "SELECT details->>'dvd_chapters' FROM objectstoragefiles WHERE path = 'DVD/VIDEO_TS/VTS_01_0.IFO'", as: String.self)
            let starts = try #require(recorded.flatMap(DVDChapterDetail.starts), "\(String(describing: recorded))")
            #expect(starts.count == 3 && starts[0] == 0 && abs(starts[1] - 2) < 0.7 && abs(starts[2] - 4) < 0.7, "\(starts)")
            try await Self.expectTranscode(copy, audioTracks: 3, length: 5.8...6.3, chapters: starts)
        }
    }

    @Test("the same disc as an ISO image (xorriso): its title set is joined and transcoded from the image's members")
    func titleSetInImage() async throws {
        try await PipelineHarness.with(.file) { harness in
            let folder = harness.work.path + "/disc"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            _ = try await Self.makeDisc(in: folder, work: harness.work.path)
            let image = harness.work.path + "/dvd.iso"
            let made = try await Subprocess.run("/usr/bin/env", ["xorriso", "-as", "mkisofs", "-quiet", "-V", "HOLIDAY", "-o", image, folder + "/DVD"])
            #expect(made.status == 0, "\(made.output)")

            let upload = try await harness.upload(label: "DVD 8", path: image)
            #expect(upload.status == 0, "\(upload.output)")
            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output.suffix(3000))")
            let rows = try await harness.rows()
            let title = try #require(rows.first { $0.path.hasSuffix("VIDEO_TS/VTS_01.mkv") }, "\(rows.map(\.path))")
            let first = try #require(rows.first { $0.path.hasSuffix("VIDEO_TS/VTS_01_1.VOB") })
            #expect(try await harness.scalar("SELECT (details->>'transcode_file_id')::bigint FROM objectstoragefiles WHERE id = \(first.id)", as: Int64.self) == title.id)
            #expect(try await harness.scalar("SELECT details->>'dvd_chapters' FROM objectstoragefiles WHERE path LIKE '%VTS_01_0.IFO'", as: String.self) != nil,
                    "the IFO's chapters are read from the image too")
        }
    }

    @Test("an upload that did not finish: transcoder run --once ends without joining (a part may be missing), the parts stay staged; once the upload has finished the title is joined")
    func unfinishedUploadWaits() async throws {
        try await PipelineHarness.with(.file) { harness in
            _ = try await Self.makeDisc(in: harness.source.path, work: harness.work.path)
            let upload = try await harness.upload(label: "DVD 9")
            #expect(upload.status == 0, "\(upload.output)")
            // As if the uploader had been interrupted before its end.
            try await harness.execute("UPDATE sources SET finished_at = NULL WHERE label = 'DVD 9'")
            let started = ContinuousClock.now
            let waited = try await harness.transcodeOnce()
            #expect(waited.status == 0, "\(waited.output.suffix(2000))")
            #expect(ContinuousClock.now - started < .seconds(60), "--once must not wait for an upload that is not running")
            let staged = try await harness.rows().filter { $0.path.hasSuffix(".VOB") && $0.path.contains("VTS_01_") && !$0.path.hasSuffix("_0.VOB") }
            #expect(staged.count == 2 && staged.allSatisfy { $0.state == "staged" }, "\(staged.map { ($0.path, $0.state) })")

            // The upload run again, to its end: the waiting parts are claimable at once, not after their wait.
            let finished = try await harness.upload(label: "DVD 9")
            #expect(finished.status == 0, "\(finished.output)")
            let joined = try await harness.transcodeOnce()
            #expect(joined.status == 0, "\(joined.output.suffix(2000))")
            #expect(try await harness.rows().contains { $0.path == "DVD/VIDEO_TS/VTS_01.mkv" })
        }
    }

    // Staging is S3 (moto) here: `--bwlimit` paces S3 stores only, so into file:// staging both parts were sent
    // within milliseconds and the sender could not be caught between them.
    @Test("a DVD read into a spool and sent one file at a time: a part still spooled is waited for, not taken for a hole; once sent, the title is joined")
    func spooledPartsAreWaitedFor() async throws {
        try await PipelineHarness.with(.s3) { harness in
            _ = try await Self.makeDisc(in: harness.source.path, work: harness.work.path)
            let spool = harness.work.path + "/spool"
            let upload = try await harness.upload(label: "DVD 11", extra: ["--spool", spool])
            #expect(upload.status == 0, "\(upload.output)")
            let parts = ["DVD/VIDEO_TS/VTS_01_1.VOB", "DVD/VIDEO_TS/VTS_01_2.VOB"]
            // One file at a time, slowly (each VOB takes about 15 s at 128 KiB/s, so a poll slowed by a loaded machine
            // still sees the moment between them): stop the sender while one part is staged and the other still spooled.
            let sender = try Program.start(
                "uploader", ["send", "--spool", spool, "--json", "--lease-seconds", "3", "--concurrency", "1", "--bwlimit", "128K"],
                environment: harness.environment)
            var states: [String] = []
            let deadline = ContinuousClock.now + .seconds(240)
            while ContinuousClock.now < deadline {
                let rows = try await harness.rows()
                states = parts.map { part in rows.first { $0.path == part }?.state ?? "missing" }
                if states.sorted() == ["spooled", "staged"] { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            sender.signal(SIGKILL)
            _ = try await sender.wait()
            #expect(states.sorted() == ["spooled", "staged"], "the sender never stopped between the two parts: \(states)")

            let waited = try await harness.transcodeOnce()
            #expect(waited.status == 0, "\(waited.output.suffix(2000))")
            #expect(!waited.output.contains("kept raw"), "a spooled part was taken for a hole: \(waited.output.suffix(3000))")
            let after = try await harness.rows()
            #expect(parts.map { part in after.first { $0.path == part }?.state ?? "missing" } == states, "the parts wait as they were")
            #expect(!after.contains { $0.path.hasSuffix(".mkv") })

            // The dead sender's lease runs out; the next sender sends the rest and the title is joined.
            try await Task.sleep(for: .seconds(3.5))
            let sent = try await Program.run("uploader", ["send", "--spool", spool, "--json"], environment: harness.environment)
            #expect(sent.status == 0, "\(sent.output)")
            let rows = try await Self.transcodeAndArchive(harness)
            let first = try #require(rows.first { $0.path == parts[0] })
            let title = try #require(rows.first { $0.path == "DVD/VIDEO_TS/VTS_01.mkv" }, "\(rows.map(\.path))")
            #expect(try await harness.scalar("SELECT (details->>'transcode_file_id')::bigint FROM objectstoragefiles WHERE id = \(first.id)", as: Int64.self) == title.id)
            #expect(try await harness.sourceState("DVD 11") == "archived")
        }
    }

    @Test("a title whose IFO plays its cells out of sector order: the transcode plays them as the IFO says (blue, then red), not in file order")
    func cellOrder() async throws {
        try await PipelineHarness.with(.file) { harness in
            func run(_ arguments: [String], environment: [String: String] = [:]) async throws {
                let result = try await Subprocess.run("/usr/bin/env", environment.map { "\($0.key)=\($0.value)" } + arguments)
                #expect(result.status == 0, "\(arguments.first ?? ""): \(result.output.suffix(1500))")
            }
            var clips: [String] = []
            for colour in ["red", "blue"] {
                let clip = harness.work.path + "/\(colour).mpg"
                try await run([
                    "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=\(colour):size=720x576:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2", "-target", "pal-dvd", "-b:a", "192k", "-ac", "2", clip,
                ])
                clips.append(clip)
            }
            let disc = harness.source.path + "/DVD"
            try await run(["dvdauthor", "-o", disc, "-t"] + clips, environment: ["VIDEO_FORMAT": "PAL"])
            try await run(["dvdauthor", "-o", disc, "-T"], environment: ["VIDEO_FORMAT": "PAL"])
            // Play the second cell first: swap the first program chain's two cell playback entries, in the IFO and
            // its backup, as a commercial disc may lay them out.
            for name in ["VTS_01_0.IFO", "VTS_01_0.BUP"] {
                let path = disc + "/VIDEO_TS/" + name
                var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
                func u32(_ at: Int) -> Int { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
                let table = u32(0xCC) * 2048
                let pgc = table + u32(table + 12)
                let playback = pgc + (Int(bytes[pgc + 0xE8]) << 8 | Int(bytes[pgc + 0xE9]))
                #expect(bytes[pgc + 3] == 2, "two cells expected, dvdauthor wrote \(bytes[pgc + 3])")
                let first = Array(bytes[playback..<(playback + 24)])
                bytes.replaceSubrange(playback..<(playback + 24), with: bytes[(playback + 24)..<(playback + 48)])
                bytes.replaceSubrange((playback + 24)..<(playback + 48), with: first)
                try Data(bytes).write(to: URL(fileURLWithPath: path))
            }

            let upload = try await harness.upload(label: "DVD 10")
            #expect(upload.status == 0, "\(upload.output)")
            #expect(try await harness.scalar(
                "SELECT details->>'dvd_cells' FROM objectstoragefiles WHERE path = 'DVD/VIDEO_TS/VTS_01_0.IFO'", as: String.self) != nil)
            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output.suffix(2000))")
            let archived = try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(archived.status == 0, "\(archived.output)")
            let restored = try await ArchivePromiseTests.restore(harness, source: "DVD 10")
            let title = try #require(restored.files.first { $0.key.hasPrefix("DVD 10/DVD/VIDEO_TS/VTS_01.") }?.value, "\(restored.files.keys.sorted())")
            let copy = harness.work.path + "/title.out"
            _ = FileManager.default.createFile(atPath: copy, contents: Data(title))
            let start = try await Self.colour(of: copy, at: 0.5)
            let end = try await Self.colour(of: copy, at: 3.0)
            #expect(start.count == 3 && start[1] > start[2], "the title starts blue: \(start)")
            #expect(end.count == 3 && end[2] > end[1], "and ends red: \(end)")
        }
    }

    /// Runs the transcoder and the archiver once each, expecting nothing kept raw and every row archived (an IFO
    /// and its backup, BUP, are the same bytes: one is a duplicate of the other); returns the rows.
    static func transcodeAndArchive(_ harness: PipelineHarness) async throws -> [PipelineHarness.Row] {
        let transcoded = try await harness.transcodeOnce()
        #expect(transcoded.status == 0, "\(transcoded.output.suffix(3000))")
        #expect(!transcoded.output.contains("kept raw"), "\(transcoded.output.suffix(3000))")
        let archived = try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
        #expect(archived.status == 0, "\(archived.output)")
        let rows = try await harness.rows()
        #expect(rows.allSatisfy { ["archived", "duplicate"].contains($0.state) }, "\(rows.map { ($0.path, $0.state, $0.error) })")
        return rows
    }

    /// One video, `audioTracks` audio tracks, the subtitles, a length within `length`, and (when given) chapters
    /// where the IFO says.
    static func expectTranscode(_ path: String, audioTracks: Int, length: ClosedRange<Double>, chapters: [Double]?) async throws {
        let streams = try await Subprocess.run("/usr/bin/env", [
            "ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration", "-of", "compact", path,
        ])
        let lines = streams.output.split(separator: "\n")
        #expect(lines.filter { $0.contains("codec_type=video") }.count == 1, "\(path): \(streams.output)")
        #expect(lines.filter { $0.contains("codec_type=audio") }.count == audioTracks, "\(path): \(streams.output)")
        #expect(lines.contains { $0.contains("codec_name=dvd_subtitle") }, "\(path): \(streams.output)")
        let duration = try #require(lines.first { $0.hasPrefix("format|") }.flatMap { Double($0.split(separator: "=").last ?? "") }, "\(streams.output)")
        #expect(length.contains(duration), "\(path): \(duration) s, expected \(length)")
        guard let chapters else { return }
        let found = try await Subprocess.run("/usr/bin/env", ["ffprobe", "-v", "error", "-show_chapters", "-of", "csv=p=0", path])
        let starts = found.output.split(separator: "\n").compactMap { line in line.split(separator: ",").dropFirst(3).first.flatMap { Double($0) } }
        #expect(starts.count == chapters.count, "\(path): \(found.output) against \(chapters)")
        for (start, expected) in zip(starts, chapters) { #expect(abs(start - expected) < 0.05, "\(path): \(found.output) against \(chapters)") }
    }

    /// Restores the source and expects every one of `originals` (paths in the source) back byte for byte; returns
    /// the restored files by path (under the source's label).
    static func restore(_ harness: PipelineHarness, source label: String, expecting originals: [String: [UInt8]]) async throws -> [String: [UInt8]] {
        let restored = try await ArchivePromiseTests.restore(harness, source: label)
        #expect(restored.status == 0, "\(restored.output)")
        for (path, bytes) in originals {
            let same = restored.files[label + "/" + path] == bytes
            #expect(same, "\(path) did not come back byte for byte")
        }
        return restored.files
    }

    /// The mean colour of a frame, as Y, Cb, Cr: blue has a high Cb, red a high Cr.
    static func colour(of path: String, at seconds: Double) async throws -> [UInt8] {
        let pixel = try await Subprocess.run("/usr/bin/env", [
            "sh", "-c", "ffmpeg -v error -ss \(seconds) -i '\(path)' -frames:v 1 -vf scale=1:1,format=yuv444p -f rawvideo - | od -An -tu1",
        ])
        return pixel.output.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt8($0) }
    }

    static func files(under root: String) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let relative = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory)
            if !isDirectory.boolValue { files[relative] = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + relative))) }
        }
        return files
    }
}
