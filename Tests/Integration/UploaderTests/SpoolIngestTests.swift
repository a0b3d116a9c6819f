import Foundation
import Testing
import TestSupport

/// `uploader upload --spool` with many files in flight at once: small files give their read slot back before their
/// fsync, so reads, writes and syncs of different files interleave. None of that may mix up whose bytes are whose.
@Suite("spool ingest", .serialized)
struct SpoolIngestTests {
    @Test("randomized: hundreds of files of random sizes (both sides of one read chunk, equal sizes, duplicates) read into a spool at once; every spooled row's spool file holds exactly the bytes of its path, and nothing else is in the spool")
    func concurrentIngestKeepsEveryFileItsOwn() async throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["SPOOL_TEST_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
        print("concurrentIngestKeepsEveryFileItsOwn seed \(seed) (SPOOL_TEST_SEED replays it)")
        var random = SplitMix(seed: seed)
        try await PipelineHarness.with(.s3) { harness in
            var files: [String: [UInt8]] = [:]
            for index in 0..<300 {
                // Up to 1.5 MiB: the reader's chunk is 1 MiB, so some files span two chunks and keep their slot.
                let size = Int.random(in: 1...1_572_864, using: &random)
                files["docs/\(index / 50)/file-\(index).bin"] = PipelineHarness.bytes(count: size, seed: random.next())
            }
            for index in 0..<20 {
                // Same size, other content: these are hashed before they are stored.
                files["same-size/file-\(index).bin"] = PipelineHarness.bytes(count: 65_536, seed: random.next())
            }
            for index in 0..<10 {
                let original = Int.random(in: 0..<300, using: &random)
                files["copies/copy-\(index).bin"] = files["docs/\(original / 50)/file-\(original).bin"]
            }
            files["video/large.bin"] = PipelineHarness.bytes(count: 12_000_000, seed: random.next())
            for (path, bytes) in files { try harness.write(path, bytes) }

            let spool = harness.work.path + "/spool"
            let upload = try await harness.upload(extra: ["--spool", spool])
            #expect(upload.status == 0, "\(upload.output)")

            let rows = try await harness.rows()
            #expect(rows.count == files.count, "one row per file")
            var spooledKeys: Set<String> = []
            for row in rows {
                let expected = PipelineHarness.sha256(try #require(files[row.path], "\(row.path) is a file of the disc"))
                #expect(row.hash == expected, "\(row.path): the row's hash is its own content's")
                switch row.state {
                case "spooled":
                    let key = try #require(row.storageKey)
                    spooledKeys.insert(key)
                    let bytes = try #require(FileManager.default.contents(atPath: spool + "/" + key), "\(row.path): its spool file exists")
                    #expect(PipelineHarness.sha256(Array(bytes)) == expected, "\(row.path): its spool file holds its bytes")
                case "duplicate":
                    let holder = try #require(rows.first { $0.id == row.duplicateOf }, "\(row.path): its holder exists")
                    #expect(holder.hash == expected, "\(row.path): a duplicate of the same content")
                default:
                    Issue.record("\(row.path): state \(row.state)")
                }
            }
            #expect(Set(SpoolTests.spoolFiles(spool)) == spooledKeys, "the spool holds the spooled rows' files and nothing else")
        }
    }
}
