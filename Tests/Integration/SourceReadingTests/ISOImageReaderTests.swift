import Foundation
import NIOCore
import Testing
import TestSupport
@testable import SourceReading

@Suite(.onOwnThreads)
struct ISOImageReaderTests {
    struct Read {
        var entries: [ISOEntry] = []
        var contents: [RawPath: (size: Int64, sha256: String, chunks: Int, largestChunk: Int)] = [:]
    }

    func readAll(_ iso: String, chunkSize: Int = 1 << 20) async throws -> (Read, ISOReadSummary) {
        var read = Read()
        let summary = try await ISOImageReader.read(RawPath(iso), configuration: .init(chunkSize: chunkSize)) { entry, contents in
            read.entries.append(entry)
            guard case .file = entry.type else { return }
            var hash = SHA256Stream(), chunks = 0, largest = 0
            for try await chunk in contents {
                hash.update(chunk)
                chunks += 1
                largest = max(largest, chunk.readableBytes)
            }
            read.contents[entry.path] = (hash.byteCount, hash.finalize(), chunks, largest)
        }
        return (read, summary)
    }

    func makeSource(_ dir: TemporaryDirectory) throws -> [UInt8] {
        let big = pseudoRandomBytes(3 * 1024 * 1024 + 12345)
        try dir.write("src/big/random.bin", big)
        try dir.write("src/empty.txt", [])
        try dir.write("src/a/b/c/deep.txt", "deep")
        try dir.write("src/ünïcödé/日本語.txt", "こんにちは")
        try dir.write("src/with space.txt", "space")
        try FileManager.default.createSymbolicLink(atPath: dir.file("src/link"), withDestinationPath: "with space.txt")
        return big
    }

    @Test func rockRidgeAndJolietImage() async throws {
        let dir = try TemporaryDirectory()
        let big = try makeSource(dir)
        let iso = dir.file("disc.iso")
        try run(#require(which("xorriso"), "xorriso is installed by scripts/test"), ["-as", "mkisofs", "-quiet", "-J", "-joliet-long", "-R", "-V", "TEST", "-o", iso, dir.file("src")])
        let (read, summary) = try await readAll(iso)

        let byPath = Dictionary(uniqueKeysWithValues: read.entries.map { ($0.path.string, $0) })
        #expect(byPath["big"]?.type == .directory)
        #expect(byPath["a/b/c"]?.type == .directory)
        #expect(byPath["a/b/c/deep.txt"]?.type == .file)
        #expect(byPath["ünïcödé/日本語.txt"]?.type == .file, "unicode names survive (Rock Ridge): \(byPath.keys.sorted())")
        #expect(byPath["with space.txt"]?.size == 5)
        #expect(byPath["link"]?.type == .symlink(target: "with space.txt"))
        #expect(byPath["empty.txt"]?.size == 0)
        #expect(read.contents["empty.txt"]?.size == 0)
        #expect(read.contents["empty.txt"]?.chunks == 0)
        let random = try #require(read.contents["big/random.bin"])
        #expect(random.size == Int64(big.count))
        #expect(random.sha256 == SHA256Stream.hash(big))
        #expect(random.chunks == 4, "3 MiB + a bit in 1 MiB chunks")
        #expect(random.largestChunk == 1 << 20)
        #expect(read.contents["ünïcödé/日本語.txt"]?.sha256 == SHA256Stream.hash(Array("こんにちは".utf8)))
        #expect(byPath["a/b/c/deep.txt"]?.modificationTime.map { abs($0.timeIntervalSinceNow) < 3600 } == true)
        #expect(summary.files == 5)
        #expect(summary.symlinks == 1)
        #expect(summary.bytes == Int64(big.count) + 4 + 15 + 5)
    }

    @Test func jolietOnlyImageKeepsUnicodeNames() async throws {
        let dir = try TemporaryDirectory()
        let big = try makeSource(dir)
        try FileManager.default.removeItem(atPath: dir.file("src/link"))
        let iso = dir.file("joliet.iso")
        try run(#require(which("xorriso"), "xorriso is installed by scripts/test"), ["-as", "mkisofs", "-quiet", "-J", "-joliet-long", "-o", iso, dir.file("src")])
        let (read, _) = try await readAll(iso, chunkSize: 64 * 1024)
        let paths = Set(read.entries.map(\.path.string))
        #expect(paths.contains("ünïcödé/日本語.txt"), "Joliet names: \(paths.sorted())")
        #expect(read.contents["big/random.bin"]?.sha256 == SHA256Stream.hash(big))
        #expect(read.contents["big/random.bin"]?.largestChunk == 64 * 1024)
    }

    @Test func skippingContentAndReadingStaleContentsIsSafe() async throws {
        let dir = try TemporaryDirectory()
        _ = try makeSource(dir)
        let iso = dir.file("disc.iso")
        try run(#require(which("xorriso"), "xorriso is installed by scripts/test"), ["-as", "mkisofs", "-quiet", "-J", "-R", "-o", iso, dir.file("src")])
        let reader = try await ISOImageReader.open(RawPath(iso))
        var stale: ISOEntryContents?
        var count = 0
        while let entry = try await reader.nextEntry() {
            count += 1
            if case .file = entry.type, entry.size > 0, stale == nil { stale = reader.contents() }
        }
        #expect(count >= 9)
        let contents = try #require(stale)
        await #expect(throws: IngestError.self) {
            for try await _ in contents {}
        }
        await reader.close()
    }

    @Test func hardLinkedFilesKeepBothPaths() async throws {
        let dir = try TemporaryDirectory()
        try dir.write("src/first.txt", "shared content")
        #expect(link(dir.file("src/first.txt"), dir.file("src/second.txt")) == 0)
        let iso = dir.file("links.iso")
        try run(#require(which("xorriso"), "xorriso is installed by scripts/test"), ["-as", "mkisofs", "-quiet", "-R", "--hardlinks", "-o", iso, dir.file("src")])
        let (read, _) = try await readAll(iso)
        let byPath = Dictionary(uniqueKeysWithValues: read.entries.map { ($0.path.string, $0) })
        #expect(Set(byPath.keys) == ["first.txt", "second.txt"], "no entry for the root directory itself")
        // Both paths are listed; the content comes with one of them, the other names it as its link target.
        let first = try #require(byPath["first.txt"]), second = try #require(byPath["second.txt"])
        let withContent = [first, second].filter { read.contents[$0.path]?.sha256 == SHA256Stream.hash(Array("shared content".utf8)) }
        #expect(!withContent.isEmpty)
        for entry in [first, second] where withContent.first?.path != entry.path {
            if case .hardlink(let target) = entry.type {
                #expect(target == withContent.first?.path)
            } else {
                #expect(read.contents[entry.path]?.sha256 == SHA256Stream.hash(Array("shared content".utf8)))
            }
        }
    }

    @Test func notAnISOFailsNamingThePath() async throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("fake.iso", "this is not a disc image")
        await #expect {
            _ = try await ISOImageReader.read(RawPath(path)) { _, _ in }
        } throws: { error in
            let error = error as? IngestError
            return error?.code == .archiveFailed && error?.path == path
        }
    }

    @Test func truncatedImageFailsInsteadOfReturningShortData() async throws {
        let dir = try TemporaryDirectory()
        _ = try makeSource(dir)
        let iso = dir.file("disc.iso")
        try run(#require(which("xorriso"), "xorriso is installed by scripts/test"), ["-as", "mkisofs", "-quiet", "-R", "-o", iso, dir.file("src")])
        // Cut the image in the middle of the 3 MiB file.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: iso))
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: size - 1_500_000)
        try handle.close()
        await #expect(throws: IngestError.self) {
            _ = try await readAll(iso)
        }
    }
}
