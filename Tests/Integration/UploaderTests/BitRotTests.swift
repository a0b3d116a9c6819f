import Foundation
import SystemIO
import Testing
import TestSupport

/// `--check-unchanged PERCENT`: files unchanged by size and time are read again on a rolling sample, and bytes that
/// changed underneath (bit rot on the original medium) are reported, never stored as a silent new version.
@Suite("uploader upload --check-unchanged: bit rot on the original is reported, not stored")
struct BitRotTests {
    @Test("a rolling 25 % sample reads every file once in four runs; a flipped byte with the same size and time is reported, exit 1, no new version")
    func rollingSampleAndBitRot() async throws {
        try await UploaderHarness.with(.file) { harness in
            for index in 0..<40 { _ = try harness.write("photos/img-\(index).jpg", UploaderHarness.bytes(count: 5_000 + index, seed: UInt64(index))) }
            #expect(try await harness.upload(label: "Old drive").status == 0)

            var checked = 0
            for _ in 0..<4 {
                let run = try await harness.upload(label: "Old drive", extra: ["--check-unchanged", "25"])
                #expect(run.status == 0, "\(run.output)")
                #expect(run.summary["unchanged"] as? Int == 40)
                checked += run.summary["unchanged_checked"] as? Int ?? 0
            }
            #expect(checked == 40, "four runs at 25 % read each file once")

            // Rot: one byte differs, size and modification time as they were.
            let path = harness.source.path + "/photos/img-7.jpg"
            let time = try #require(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[1234] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.modificationDate: time], ofItemAtPath: path)

            // Real decay on the medium leaves the inode's change time alone; this simulation writes through the kernel,
            // which sets it, so a run without the check would see a rewrite with its time put back (by the local
            // index, or by the change time without it) and store it as a new version. The check's sample comes first.
            let rotten = try await harness.upload(label: "Old drive", extra: ["--check-unchanged", "100"])
            #expect(rotten.status == 1, "\(rotten.output)")
            let reported = rotten.summary["bit_rot"] as? [[String: Any]] ?? []
            #expect(reported.map { $0["path"] as? String } == ["photos/img-7.jpg"])
            #expect((reported.first?["detail"] as? String)?.contains("size and time unchanged since version 1, but the content differs") == true)
            #expect(rotten.summary["unchanged_checked"] as? Int == 39)
            #expect(rotten.summary["complete"] as? Bool == false)
            #expect(try await harness.scalar("SELECT max(version) FROM objectstoragefiles WHERE path = 'photos/img-7.jpg'", as: Int.self) == 1,
                    "never stored as a silent new version")
            let bad = try await harness.upload(label: "Old drive", extra: ["--check-unchanged", "101"])
            #expect(bad.status == 2 && bad.output.contains("--check-unchanged is a percentage"), "\(bad.output)")
        }
    }
}
