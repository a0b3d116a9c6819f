import Catalog
import Crypto
import Foundation
import ObjectStore
import Testing
import TestSupport
import SystemIO

/// `uploader upload image.iso` of ISO 9660 + UDF bridge images made with genisoimage, whose ISO 9660 view lacks
/// files: they are read through UDF, or the image is kept whole, never catalogued from the ISO 9660 view alone.
@Suite("uploader upload of UDF bridge images whose ISO 9660 view is incomplete")
struct UDFImageUploadTests {
    static func genisoimage() throws -> String {
        try #require(["/usr/bin/genisoimage", "/bin/genisoimage"].first { FileManager.default.isExecutableFile(atPath: $0) }, "genisoimage is installed by scripts/test")
    }

    /// Builds `image` from `tree` with UDF and Rock Ridge; `options` come after (e.g. -hide, which hides from
    /// ISO 9660 and Rock Ridge only; genisoimage's UDF tree follows Joliet's hiding, so these images have no Joliet).
    static func makeImage(_ image: String, from tree: String, options: [String] = []) async throws {
        let build = try await Subprocess.run(genisoimage(), ["-quiet", "-udf", "-R"] + options + ["-o", image, tree])
        #expect(build.status == 0, "\(build.output)")
    }

    static func write(_ path: String, _ bytes: [UInt8]) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
    }

    /// SHA-256 of a file or a staged object, streamed (they may be larger than memory allows).
    static func sha256(file path: String) throws -> String {
        let handle = try #require(FileHandle(forReadingAtPath: path))
        defer { try? handle.close() }
        var hasher = SHA256()
        while let data = try handle.read(upToCount: 8 << 20), !data.isEmpty { hasher.update(data: data) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func sha256(staged key: String, size: Int64, in harness: UploaderHarness) async throws -> String {
        var hasher = SHA256()
        let step: Int64 = 256 << 20
        for first in stride(from: Int64(0), to: size, by: Int(step)) {
            let range = ByteRange(first: first, last: min(first + step, size) - 1)
            hasher.update(data: try await harness.staging.getBytes(key, range: range, limit: Int(step)))
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    @Test("a file only in UDF (hidden from ISO 9660 and Rock Ridge) is catalogued and staged with its bytes")
    func udfOnlyFile() async throws {
        try await UploaderHarness.with(.s3) { harness in
            let tree = harness.work.path + "/udf-tree"
            let hidden = UploaderHarness.bytes(count: 1_500_000, seed: 31)
            let video = UploaderHarness.bytes(count: 2_000_000, seed: 32)
            try Self.write(tree + "/VIDEO_TS/VTS_01_1.VOB", video)
            try Self.write(tree + "/docs/ünïcödé.txt", Array("brief".utf8))
            try Self.write(tree + "/docs/only in udf.bin", hidden)
            let iso = harness.work.path + "/bridge.iso"
            try await Self.makeImage(iso, from: tree, options: ["-hide", "only in udf.bin"])

            let result = try await Program.run("uploader", ["upload", iso, "--label", "UDF 1", "--json"], environment: harness.environment)
            #expect(result.status == 0, "\(result.output)")
            let summary = UploaderHarness.summary(in: result.output)
            #expect(summary["files"] as? Int == 3)
            let notes = summary["notes"] as? [String] ?? []
            #expect(notes.contains { $0.contains("read through UDF") && $0.contains("docs/only in udf.bin is only in UDF") }, "\(notes)")

            let rows = try await harness.rows()
            #expect(rows.map(\.path) == ["VIDEO_TS/VTS_01_1.VOB", "docs/only in udf.bin", "docs/ünïcödé.txt"])
            let byPath = Dictionary(uniqueKeysWithValues: rows.map { ($0.path, $0) })
            let udfOnly = try #require(byPath["docs/only in udf.bin"], "the UDF-only file is catalogued")
            #expect(udfOnly.size == Int64(hidden.count))
            #expect(udfOnly.hash == UploaderHarness.sha256(hidden))
            #expect(udfOnly.state == "staged")
            #expect(try await harness.stagedHash(try #require(udfOnly.storageKey)) == UploaderHarness.sha256(hidden))
            #expect(byPath["VIDEO_TS/VTS_01_1.VOB"]?.hash == UploaderHarness.sha256(video))
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE details->>'read_through' = 'udf'", as: Int64.self) == 3)

            let again = try await Program.run("uploader", ["upload", iso, "--label", "UDF 1", "--json"], environment: harness.environment)
            #expect(UploaderHarness.summary(in: again.output)["unchanged"] as? Int == 3)
        }
    }

    @Test("a file over 4 GiB (a size ISO 9660 cannot hold) is catalogued with its full size and hash")
    func fileOver4GiB() async throws {
        var disk = statvfs()
        #expect(statvfs("/tmp", &disk) == 0)
        let free = Int64(disk.f_bavail) * Int64(disk.f_frsize)
        guard free >= 15_000_000_000 else {
            // The image (4.4 GB) and its staged copy (4.4 GB) must fit with room to spare.
            print("skipping the over-4-GiB case: only \(free / 1_000_000_000) GB free under /tmp, it needs 15 GB")
            return
        }
        try await UploaderHarness.with(.file) { harness in
            let tree = harness.work.path + "/big-tree"
            let size: Int64 = 4_402_341_478  // 4.1 GiB, sparse in the source directory
            let huge = tree + "/huge.bin"
            try Self.write(huge, UploaderHarness.bytes(count: 1 << 20, seed: 41))
            let handle = try #require(FileHandle(forWritingAtPath: huge))
            try handle.seek(toOffset: UInt64(size) - 100_000)
            try handle.write(contentsOf: Data(UploaderHarness.bytes(count: 100_000, seed: 42)))
            try handle.close()
            try Self.write(tree + "/small.txt", Array("small".utf8))
            let expected = try Self.sha256(file: huge)
            let iso = harness.work.path + "/big.iso"
            defer { try? FileManager.default.removeItem(atPath: iso) }
            try await Self.makeImage(iso, from: tree, options: ["-allow-limited-size"])

            let result = try await Program.run("uploader", ["upload", iso, "--label", "Big", "--json"], environment: harness.environment)
            #expect(result.status == 0, "\(result.output)")
            let notes = UploaderHarness.summary(in: result.output)["notes"] as? [String] ?? []
            // genisoimage records the file in ISO 9660 with its size modulo 4 GiB: that placeholder must not be read.
            #expect(notes.contains { $0.contains("huge.bin has \(size) bytes in UDF, \(size % (1 << 32)) in ISO 9660") }, "\(notes)")
            let rows = try await harness.rows()
            #expect(rows.map(\.path) == ["huge.bin", "small.txt"])
            let row = try #require(rows.first)
            #expect(row.size == size, "the full size, not the ISO 9660 placeholder's")
            #expect(row.hash == expected)
            #expect(row.state == "staged")
            #expect(try await Self.sha256(staged: try #require(row.storageKey), size: size, in: harness) == expected)
        }
    }

    @Test("an image whose UDF the reader refuses is kept whole as one disc_image row, with a note")
    func unreadableUDFKeptWhole() async throws {
        try await UploaderHarness.with(.file) { harness in
            let tree = harness.work.path + "/udf-tree"
            try Self.write(tree + "/visible.txt", Array("visible".utf8))
            try Self.write(tree + "/hidden.bin", UploaderHarness.bytes(count: 300_000, seed: 51))
            let iso = harness.work.path + "/damaged-udf.iso"
            try await Self.makeImage(iso, from: tree, options: ["-hide", "hidden.bin"])
            // Break the File Set Descriptor's tag checksum: the UDF tree can no longer be trusted.
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: iso)))
            let fileSet = try #require((0..<(bytes.count / 2048)).first { sector in
                let base = sector * 2048
                var sum: UInt8 = 0
                for index in 0..<16 where index != 4 { sum &+= bytes[base + index] }
                return bytes[base] == 0 && bytes[base + 1] == 1 && sum == bytes[base + 4]  // tag 256
            })
            bytes[fileSet * 2048 + 4] &+= 1
            try Data(bytes).write(to: URL(fileURLWithPath: iso))

            let result = try await Program.run("uploader", ["upload", iso, "--label", "Damaged", "--json"], environment: harness.environment)
            #expect(result.status == 0, "\(result.output)")
            let notes = UploaderHarness.summary(in: result.output)["notes"] as? [String] ?? []
            #expect(notes.contains { $0.contains("kept whole as one disc image") && $0.contains("checksum") }, "\(notes)")
            let rows = try await harness.rows()
            #expect(rows.count == 1, "no member of the ISO 9660 view alone: \(rows.map(\.path))")
            let row = try #require(rows.first)
            #expect(row.path == "damaged-udf.iso")
            #expect(row.kind == "disc_image")
            #expect(row.size == Int64(bytes.count))
            #expect(row.hash == UploaderHarness.sha256(bytes))
            #expect(row.state == "staged")
            #expect(try await harness.stagedHash(try #require(row.storageKey)) == UploaderHarness.sha256(bytes))
            let note = try await harness.scalar("SELECT details->>'note' FROM objectstoragefiles", as: String.self)
            #expect(note?.contains("kept whole as one disc image") == true)

            let again = try await Program.run("uploader", ["upload", iso, "--label", "Damaged", "--json"], environment: harness.environment)
            #expect(UploaderHarness.summary(in: again.output)["unchanged"] as? Int == 1)
        }
    }
}
