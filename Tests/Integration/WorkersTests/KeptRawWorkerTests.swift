import Catalog
import Foundation
import ObjectStore
import PipelineCore
import Testing
import TestSupport
import SystemIO

/// The real `transcoder` between the real `uploader` and `archiver`: a video whose raw file the transcode cannot
/// faithfully replace is archived as it is, says why in `details.kept_raw`, and is listed on the status JSON; one
/// whose every stream the transcode carries (subtitles included) is replaced by it.
@Suite("transcoder worker: videos kept raw")
struct KeptRawWorkerTests {
    static func dv(aspect: String, seconds: Int, to path: String, container: [String] = []) throws {
        try TranscoderWorkerTests.ffmpeg([
            "-f", "lavfi", "-i", "testsrc2=size=720x480:rate=30000/1001", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", String(seconds), "-vf", "setfield=bff", "-c:v", "dvvideo", "-pix_fmt", "yuv411p", "-aspect", aspect,
            "-c:a", "pcm_s16le", "-ac", "2",
        ] + container + [path])
    }

    @Test("a damaged capture is archived raw byte for byte with details.kept_raw and listed on the status JSON; a clean tape is transcoded and its raw file dropped; a tape switching from 4:3 to 16:9 is transcoded into one 16:9 picture; a video with subtitles is transcoded to Matroska with them")
    func keptRawIsArchivedAndListed() async throws {
        try await PipelineHarness.with(.file) { harness in
            try FileManager.default.createDirectory(atPath: harness.source.path + "/tapes", withIntermediateDirectories: true)
            try Self.dv(aspect: "4:3", seconds: 1, to: harness.source.path + "/tapes/clean.avi")
            // dvgrab-style raw DV, two recordings back to back: the camcorder was switched to 16:9 in between.
            let narrow = harness.work.path + "/narrow.dv"
            let wide = harness.work.path + "/wide.dv"
            try Self.dv(aspect: "4:3", seconds: 1, to: narrow, container: ["-f", "dv"])
            try Self.dv(aspect: "16:9", seconds: 1, to: wide, container: ["-f", "dv"])
            let switched = Array(try Data(contentsOf: URL(fileURLWithPath: narrow)) + Data(contentsOf: URL(fileURLWithPath: wide)))
            try harness.write("tapes/switched.dv", switched)

            // A capture with a bad stretch in the middle (bytes overwritten): the AVI demuxer skips it silently.
            let damagedPath = harness.work.path + "/damaged.avi"
            try Self.dv(aspect: "4:3", seconds: 2, to: damagedPath)
            var damaged = Array(try Data(contentsOf: URL(fileURLWithPath: damagedPath)))
            damaged.replaceSubrange((damaged.count * 2 / 5)..<(damaged.count * 2 / 5 + 300_000), with: PipelineHarness.bytes(count: 300_000, seed: 9))
            try harness.write("tapes/damaged.avi", damaged)
            // Two audio tracks and subtitles: the transcode carries both (checked after it).
            try harness.write("party.srt", "1\n00:00:00,100 --> 00:00:00,900\nHappy birthday!\n")
            try TranscoderWorkerTests.ffmpeg([
                "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000", "-i", harness.source.path + "/party.srt",
                "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s", "-t", "1", "-c:v", "mjpeg", "-c:a", "pcm_s16le", "-c:s", "srt",
                harness.source.path + "/tapes/party.mkv",
            ])
            try FileManager.default.removeItem(atPath: harness.source.path + "/party.srt")

            let upload = try await harness.upload(label: "Tapes")
            #expect(upload.status == 0, "\(upload.output)")
            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output)")
            #expect(transcoded.output.contains("video kept raw"), "\(transcoded.output)")
            let archived = try await harness.archiveOnce(["--small-file-threshold", "100KiB"], environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(archived.status == 0, "\(archived.output)")

            let rows = try await harness.rows()
            #expect(rows.allSatisfy { $0.state == "archived" && $0.error == nil }, "\(rows.map { ($0.path, $0.state, $0.error) })")

            // The switched tape is transcoded into one 16:9 picture, its 4:3 part pillarboxed (RawInspectionTests
            // checks the pixels): an aspect change no longer keeps the raw file.
            let switchedRow = try #require(rows.first { $0.path == "tapes/switched.dv" })
            #expect(switchedRow.hash == PipelineHarness.sha256(switched))
            #expect(try await harness.scalar("SELECT details->'transcode'->>'display_aspect_ratio' FROM objectstoragefiles WHERE id = \(switchedRow.id)", as: String.self) == "16:9")
            #expect(try await harness.scalar("SELECT details->'transcode'->>'notes' FROM objectstoragefiles WHERE id = \(switchedRow.id)", as: String.self)?.contains("pillarboxed") == true)
            #expect(try await harness.scalar("SELECT details ? 'kept_raw' FROM objectstoragefiles WHERE id = \(switchedRow.id)", as: Bool.self) == false)

            for (path, reason) in [("tapes/damaged.avi", "the raw file has read or decode errors: only ")] {
                let row = try #require(rows.first { $0.path == path })
                #expect(row.storageKey?.contains(".transcoded-") == false && row.error == nil, "\(path)")
                let archived = try await harness.archive.getBytes(try #require(row.storageKey), limit: 64 << 20)
                #expect(PipelineHarness.sha256(archived) == row.hash, "\(path): the archived object is not the raw file")
                let recorded = try await harness.scalar("SELECT coalesce(details->>'kept_raw', '') FROM objectstoragefiles WHERE id = \(row.id)", as: String.self)
                #expect(recorded?.contains(reason) == true, "\(path): \(String(describing: recorded))")
            }

            // The clean tape went the usual way: transcoded, the raw file dropped.
            let clean = try #require(rows.first { $0.path == "tapes/clean.avi" })
            #expect(clean.storageKey?.hasSuffix(".mp4") == true, "\(transcoded.output)")
            #expect(try await harness.scalar("SELECT details ? 'kept_raw' FROM objectstoragefiles WHERE id = \(clean.id)", as: Bool.self) == false)
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty, "raw or transcoded copies left in staging")

            // The party video's subtitles are carried into the transcode as they are, so it is transcoded (Matroska,
            // since MP4 cannot hold them) and not kept raw.
            let party = try #require(rows.first { $0.path == "tapes/party.mkv" })
            #expect(try await harness.scalar("SELECT details->'transcode'->>'container' FROM objectstoragefiles WHERE id = \(party.id)", as: String.self) == "matroska")
            #expect(try await harness.scalar("SELECT details ? 'kept_raw' FROM objectstoragefiles WHERE id = \(party.id)", as: Bool.self) == false)
            let restored = try await ArchivePromiseTests.restore(harness, source: "Tapes")
            // Restore names a transcode `<original>.<ext>` unless the original already has that extension.
            let partyTranscode = try #require(restored.files["Tapes/tapes/party.mkv"], "\(restored.files.keys.sorted())")
            #expect(PipelineHarness.sha256(partyTranscode) != party.hash, "the restored party video is the transcode, not the raw file")
            let partyCopy = harness.work.path + "/party-transcode.mkv"
            _ = FileManager.default.createFile(atPath: partyCopy, contents: Data(partyTranscode))
            let subtitles = try await Subprocess.run("/usr/bin/env", ["ffmpeg", "-v", "error", "-i", partyCopy, "-map", "0:s:0", "-f", "srt", "-"])
            #expect(subtitles.output.contains("Happy birthday!"), "\(subtitles.output)")
            let audioTracks = try await Subprocess.run("/usr/bin/env", ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=index", "-of", "csv=p=0", partyCopy])
            #expect(audioTracks.output.split(separator: "\n").count == 2, "\(audioTracks.output)")

            // The status JSON lists it among the videos kept raw, with its reason.
            // Its "status page:" line sits in a stdout buffer until it exits, so the test picks a port (another one
            // should that one be taken) and polls.
            var port = 0
            var server: Subprocess.Running?
            var response: Subprocess.Result?
            func get(_ path: String) async throws -> Subprocess.Result {
                try await Subprocess.run("/usr/bin/env", ["curl", "-sSf", "http://127.0.0.1:\(port)/" + path])
            }
            defer { server?.signal(SIGTERM) }
            for _ in 0..<3 where response?.status != 0 {
                port = Int.random(in: 20_000..<60_000)
                let started = try Program.start("status-server", ["serve", "--port", String(port)], environment: harness.environment)
                server = started
                let deadline = ContinuousClock.now + .seconds(60)
                while response?.status != 0, ContinuousClock.now < deadline, kill(started.processID, 0) == 0 {
                    try await Task.sleep(for: .milliseconds(250))
                    response = try await get("api/status")
                }
                if response?.status != 0 {
                    started.signal(SIGTERM)
                    _ = try await started.wait()
                    server = nil
                }
            }
            let body = try #require(response?.status == 0 ? response?.output : nil, "the status server did not answer: \(String(describing: response))")
            let status = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            let keptRaw = try #require(status["kept_raw"] as? [String: Any], "\(body.prefix(2000))")
            #expect(keptRaw["count"] as? Int == 1)
            let latest = try #require(keptRaw["latest"] as? [[String: Any]])
            #expect(latest.compactMap { $0["path"] as? String } == ["tapes/damaged.avi"])
            let damagedEntry = latest.first { $0["path"] as? String == "tapes/damaged.avi" }
            #expect((damagedEntry?["reasons"] as? [String])?.contains { $0.hasPrefix("the raw file has read or decode errors") } == true, "\(latest)")
            let page = try await get("")
            #expect(page.output.contains("Videos kept raw") && page.output.contains("tapes/damaged.avi"))
            if let running = server {
                server = nil
                running.signal(SIGTERM)
                _ = try await running.wait()
            }
        }
    }
}
