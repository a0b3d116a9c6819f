import Catalog
import Foundation
import PipelineCore
import Testing
import TestSupport
import SystemIO

/// `--keep-raw` on a source: every raw video is archived as it is and its verified transcode is archived beside it
/// as a file of its own; the policy stays on for the source; a source without it still has its raw video replaced.
@Suite("transcoder worker: the keep-raw policy")
struct KeepRawPolicyTests {
    @Test("--keep-raw: the raw DV comes back byte for byte and its H.264 transcode beside it as <path>.mp4; a later upload without the flag keeps the policy; another source's video is still replaced")
    func rawKeptBesideTranscode() async throws {
        try await PipelineHarness.with(.file) { harness in
            try FileManager.default.createDirectory(atPath: harness.source.path + "/tapes", withIntermediateDirectories: true)
            let tapePath = harness.source.path + "/tapes/wedding.avi"
            try KeptRawWorkerTests.dv(aspect: "16:9", seconds: 1, to: tapePath)
            let tape = Array(try Data(contentsOf: URL(fileURLWithPath: tapePath)))
            let kept = try await harness.upload(label: "Tapes", extra: ["--keep-raw"])
            #expect(kept.status == 0, "\(kept.output)")
            // A second source without the policy, with other footage (the same bytes would be a duplicate).
            let other = harness.work.path + "/other"
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            try KeptRawWorkerTests.dv(aspect: "4:3", seconds: 1, to: other + "/holiday.avi")
            let replaced = try await harness.upload(label: "Other", path: other)
            #expect(replaced.status == 0, "\(replaced.output)")

            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output)")
            #expect(transcoded.output.contains("raw kept beside it"), "\(transcoded.output)")
            let archived = try await harness.archiveOnce(["--small-file-threshold", "100KiB"], environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(archived.status == 0, "\(archived.output)")

            let rows = try await harness.rows()
            #expect(rows.allSatisfy { $0.state == "archived" }, "\(rows.map { ($0.path, $0.state, $0.error) })")
            let raw = try #require(rows.first { $0.path == "tapes/wedding.avi" })
            let companion = try #require(rows.first { $0.path == "tapes/wedding.avi.mp4" }, "\(rows.map(\.path))")
            #expect(raw.kind == "video" && companion.kind == "regular")
            #expect(raw.storageKey?.hasSuffix(".avi") == true, "the raw file is what is archived for the raw row")
            #expect(try await harness.scalar("SELECT coalesce(stored_hash, hash) = hash FROM objectstoragefiles WHERE id = \(raw.id)", as: Bool.self) == true,
                    "the raw row's stored content is the raw file")
            #expect(try await harness.scalar("SELECT (details->>'transcode_file_id')::bigint FROM objectstoragefiles WHERE id = \(raw.id)", as: Int64.self) == companion.id)
            #expect(try await harness.scalar("SELECT details ? 'kept_raw' FROM objectstoragefiles WHERE id = \(raw.id)", as: Bool.self) == false,
                    "a policy is not a problem for a person to look at")
            #expect(try await harness.scalar("SELECT (details->>'transcode_of')::bigint FROM objectstoragefiles WHERE id = \(companion.id)", as: Int64.self) == raw.id)
            #expect(try await harness.scalar("SELECT details->'transcode'->>'video_codec' FROM objectstoragefiles WHERE id = \(companion.id)", as: String.self) == "h264")
            let holiday = try #require(rows.first { $0.path == "holiday.avi" })
            #expect(holiday.storageKey?.hasSuffix(".mp4") == true, "without --keep-raw the transcode replaces the raw file")
            #expect(!rows.contains { $0.path == "holiday.avi.mp4" })
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty, "raw or transcoded copies left in staging")

            // The way back: the raw bytes exactly, and a playable transcode beside them.
            let restored = try await ArchivePromiseTests.restore(harness, source: "Tapes")
            #expect(restored.status == 0, "\(restored.output)")
            let rawBack = restored.files["Tapes/tapes/wedding.avi"] == tape
            #expect(rawBack, "the raw DV comes back byte for byte; restored: \(restored.files.keys.sorted()), \(restored.output.suffix(2000))")
            let transcode = try #require(restored.files["Tapes/tapes/wedding.avi.mp4"], "\(restored.files.keys.sorted())")
            let copy = harness.work.path + "/wedding.mp4"
            _ = FileManager.default.createFile(atPath: copy, contents: Data(transcode))
            let probe = try await Subprocess.run("/usr/bin/env", [
                "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,display_aspect_ratio",
                "-of", "default=noprint_wrappers=1", copy,
            ])
            #expect(probe.output.contains("codec_name=h264") && probe.output.contains("display_aspect_ratio=16:9"), "\(probe.output)")

            // The policy is sticky: uploading the same source again without the flag does not turn it off.
            let again = try await harness.upload(label: "Tapes")
            #expect(again.status == 0, "\(again.output)")
            #expect(try await harness.scalar("SELECT keep_raw FROM sources WHERE label = 'Tapes'", as: Bool.self) == true)
            #expect(try await harness.scalar("SELECT keep_raw FROM sources WHERE label = 'Other'", as: Bool.self) == false)
        }
    }

    @Test("a file of the source that already has the transcode's path is never shadowed: the transcode goes to <path>.transcode.mp4 and both come back")
    func companionPathTaken() async throws {
        try await PipelineHarness.with(.file) { harness in
            try FileManager.default.createDirectory(atPath: harness.source.path + "/tapes", withIntermediateDirectories: true)
            try KeptRawWorkerTests.dv(aspect: "4:3", seconds: 1, to: harness.source.path + "/tapes/wedding.avi")
            // The user's own file with the name a transcode would take (not a video: it is archived as it is).
            let notes = Array("the tape was recorded at the church, not at home\n".utf8)
            try harness.write("tapes/wedding.avi.mp4", notes)
            let upload = try await harness.upload(label: "Tapes", extra: ["--keep-raw"])
            #expect(upload.status == 0, "\(upload.output)")
            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output)")
            let archived = try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(archived.status == 0, "\(archived.output)")

            let rows = try await harness.rows()
            #expect(rows.allSatisfy { $0.state == "archived" }, "\(rows.map { ($0.path, $0.state, $0.error) })")
            let raw = try #require(rows.first { $0.path == "tapes/wedding.avi" })
            let companion = try #require(rows.first { $0.path == "tapes/wedding.avi.transcode.mp4" }, "\(rows.map(\.path))")
            #expect(try await harness.scalar("SELECT details->>'transcode_path' FROM objectstoragefiles WHERE id = \(raw.id)", as: String.self) == companion.path)
            #expect(rows.filter { $0.path == "tapes/wedding.avi.mp4" }.count == 1, "the user's file keeps its path alone")

            let restored = try await ArchivePromiseTests.restore(harness, source: "Tapes")
            #expect(restored.files["Tapes/tapes/wedding.avi.mp4"] == notes, "the user's file comes back, not the transcode")
            #expect(restored.files["Tapes/tapes/wedding.avi.transcode.mp4"] != nil, "\(restored.files.keys.sorted())")
        }
    }
}
