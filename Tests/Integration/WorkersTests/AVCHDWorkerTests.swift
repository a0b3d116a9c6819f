import Catalog
import Foundation
import PipelineCore
import Testing
import TestSupport
import SystemIO

/// An AVCHD camcorder card made at test time: one recording the camera spread over two clips (its playlist joins
/// them seamlessly) and a second recording of one clip. The two-clip recording is transcoded once, from both
/// clips joined, and the clips are kept as the camera wrote them; the one-clip recording is transcoded as usual.
@Suite("transcoder worker: AVCHD")
struct AVCHDWorkerTests {
    /// An MPLS playlist with one PlayItem per clip; `continues` marks items joined seamlessly to the previous one
    /// (connection condition 6), the others get condition 1.
    static func playlist(_ clips: [(name: String, continues: Bool)]) -> [UInt8] {
        var bytes = Array("MPLS0100".utf8) + [0, 0, 0, 64] + [UInt8](repeating: 0, count: 52)
        var items: [UInt8] = []
        for clip in clips {
            var body = Array(clip.name.utf8) + Array("M2TS".utf8) + [0, clip.continues ? 6 : 1] + [0] + [UInt8](repeating: 0, count: 8 + 8 + 4)
            body += [0, 0]  // an empty STN table
            items += [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        }
        let length = UInt32(6 + items.count)
        bytes += [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF), 0, 0]
        bytes += [0, UInt8(clips.count), 0, 0] + items
        return bytes
    }

    @Test("a recording spread over 00000.MTS and 00001.MTS becomes one transcode, 00000-00001.mp4, of its full length; 00002.MTS alone is transcoded as usual; the clips come back byte for byte")
    func recordingJoined() async throws {
        try await PipelineHarness.with(.file) { harness in
            let stream = harness.source.path + "/AVCHD/BDMV/STREAM"
            try FileManager.default.createDirectory(atPath: stream, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: harness.source.path + "/AVCHD/BDMV/PLAYLIST", withIntermediateDirectories: true)
            func record(_ seconds: Int, to path: String) throws {
                try TranscoderWorkerTests.ffmpeg([
                    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", String(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "ac3", "-ac", "2",
                    "-f", "mpegts", "-mpegts_m2ts_mode", "1", path,
                ])
            }
            let long = harness.work.path + "/long.m2ts"
            try record(4, to: long)
            let whole = Array(try Data(contentsOf: URL(fileURLWithPath: long)))
            // The camera's cut: at an aligned unit (32 packets of 192 bytes) about half way.
            let cut = whole.count / 6144 / 2 * 6144
            try harness.write("AVCHD/BDMV/STREAM/00000.MTS", Array(whole[..<cut]))
            try harness.write("AVCHD/BDMV/STREAM/00001.MTS", Array(whole[cut...]))
            try record(2, to: stream + "/00002.MTS")
            try harness.write("AVCHD/BDMV/PLAYLIST/00000.MPL", Self.playlist([("00000", false), ("00001", true), ("00002", false)]))
            let originals = try DVDVideoWorkerTests.files(under: harness.source.path)

            let upload = try await harness.upload(label: "Camcorder")
            #expect(upload.status == 0, "\(upload.output)")
            #expect(try await harness.scalar(
                "SELECT details->>'avchd_recordings' FROM objectstoragefiles WHERE path = 'AVCHD/BDMV/PLAYLIST/00000.MPL'", as: String.self) == "00000+00001,00002")
            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output.suffix(3000))")
            let archived = try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(archived.status == 0, "\(archived.output)")

            let rows = try await harness.rows()
            #expect(rows.allSatisfy { $0.state == "archived" }, "\(rows.map { ($0.path, $0.state, $0.error) })")
            let first = try #require(rows.first { $0.path == "AVCHD/BDMV/STREAM/00000.MTS" })
            let second = try #require(rows.first { $0.path == "AVCHD/BDMV/STREAM/00001.MTS" })
            let alone = try #require(rows.first { $0.path == "AVCHD/BDMV/STREAM/00002.MTS" })
            let joined = try #require(rows.first { $0.path == "AVCHD/BDMV/STREAM/00000-00001.mp4" }, "\(rows.map(\.path))")
            #expect(try await harness.scalar("SELECT (details->>'transcode_file_id')::bigint FROM objectstoragefiles WHERE id = \(first.id)", as: Int64.self) == joined.id)
            #expect(try await harness.scalar("SELECT (details->>'avchd_recording_of')::bigint FROM objectstoragefiles WHERE id = \(second.id)", as: Int64.self) == first.id)
            #expect(try await harness.scalar("SELECT details ? 'transcode' AND NOT details ? 'raw_kept_by_policy' FROM objectstoragefiles WHERE id = \(alone.id)", as: Bool.self) == true,
                    "a one-clip recording is transcoded as usual, its transcode in the raw file's place")
            #expect(rows.count == originals.count + 1, "one transcode beside the joined clips, none for the others: \(rows.map(\.path))")

            let restored = try await ArchivePromiseTests.restore(harness, source: "Camcorder")
            #expect(restored.status == 0, "\(restored.output)")
            for path in ["AVCHD/BDMV/STREAM/00000.MTS", "AVCHD/BDMV/STREAM/00001.MTS", "AVCHD/BDMV/PLAYLIST/00000.MPL"] {
                let same = restored.files["Camcorder/" + path] == originals[path]
                #expect(same, "\(path) did not come back byte for byte")
            }
            for (path, seconds) in [("AVCHD/BDMV/STREAM/00000-00001.mp4", 4.0), ("AVCHD/BDMV/STREAM/00002.MTS.mp4", 2.0)] {
                let bytes = try #require(restored.files["Camcorder/" + path], "\(restored.files.keys.sorted())")
                let copy = harness.work.path + "/" + (path as NSString).lastPathComponent
                _ = FileManager.default.createFile(atPath: copy, contents: Data(bytes))
                let probe = try await Subprocess.run("/usr/bin/env", ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", copy])
                let duration = Double(probe.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                #expect(abs(duration - seconds) < 0.2, "\(path) lasts \(duration) s, the recording \(seconds) s")
            }
        }
    }
}
