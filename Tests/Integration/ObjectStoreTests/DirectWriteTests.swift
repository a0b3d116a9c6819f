import Foundation
import NIOCore
import PipelineCore
import Testing
@testable import ObjectStore

/// Chunks of an odd size, so that block boundaries of the direct writer fall inside chunks.
private struct OddChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    let chunkSize: Int
    /// Throws instead of delivering the chunk that starts at or after this offset.
    var failAt: Int?

    struct AsyncIterator: AsyncIteratorProtocol {
        let source: OddChunks
        var offset = 0
        mutating func next() async throws -> ByteBuffer? {
            guard offset < source.bytes.count else { return nil }
            if let failAt = source.failAt, offset >= failAt { throw CocoaError(.fileReadUnknown) }
            let end = Swift.min(source.bytes.count, offset + source.chunkSize)
            defer { offset = end }
            return ByteBuffer(bytes: source.bytes[offset..<end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: self) }
}

@Suite("file:// store: large objects written around the page cache")
struct DirectWriteTests {
    func makeStore() async throws -> (FileSystemObjectStore, String) {
        let root = NSTemporaryDirectory() + "directwrite-\(UUID().uuidString)"
        // Small thresholds, so that test-sized objects take the direct path with several blocks.
        let store = try await FileSystemObjectStore(
            root: root, configuration: .init(chunkSize: 64 << 10, directWriteThreshold: 100_000))
        return (store, root)
    }

    @Test("objects above the threshold come back byte for byte, whatever their size's alignment",
          arguments: [100_000, 131_072, 131_073, 1_000_003, (1 << 20) + 4095])
    func roundTrip(size: Int) async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bytes = testBytes(size, seed: UInt64(size))
        let result = try await store.put("big/\(size)", from: .stream(OddChunks(bytes: bytes, chunkSize: 77_777), length: Int64(size)))
        #expect(result.sha256 == sha256Hex(bytes))
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/big/\(size)")) == Data(bytes), "exact size, no padding left")
        #expect(try await store.head("big/\(size)")?.size == Int64(size))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/.objectstore/tmp").isEmpty)
    }

    @Test("zeros in a large object become holes: the same bytes and hash come back, the disk holds only the data",
          arguments: [false, true])
    func zerosBecomeHoles(endsInZeros: Bool) async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // 4 MiB: data, 3 MiB of zeros, data at an unaligned offset, then either data or zeros to the end.
        var bytes = [UInt8](repeating: 0, count: 4 << 20)
        bytes.replaceSubrange(0..<100_000, with: testBytes(100_000, seed: 7))
        bytes.replaceSubrange(3_300_001..<3_400_000, with: testBytes(99_999, seed: 8))
        if !endsInZeros { bytes.replaceSubrange(((4 << 20) - 5_000)..., with: testBytes(5_000, seed: 9)) }
        let result = try await store.put("big/holes", from: .stream(OddChunks(bytes: bytes, chunkSize: 77_777), length: Int64(bytes.count)))
        #expect(result.sha256 == sha256Hex(bytes))
        let path = root + "/big/holes"
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(Int64(info.st_size) == Int64(bytes.count))
        #expect(Int64(info.st_blocks) * 512 < 1 << 20, "\(info.st_blocks) blocks for about 200 KiB of data")
    }

    @Test("a source that fails halfway leaves neither an object nor a temporary file")
    func failingSource() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bytes = testBytes(600_000)
        await #expect(throws: (any Error).self) {
            _ = try await store.put("big/failed", from: .stream(OddChunks(bytes: bytes, chunkSize: 50_000, failAt: 300_000), length: 600_000))
        }
        #expect(try await store.head("big/failed") == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/.objectstore/tmp").isEmpty)
    }

    @Test("a source longer than announced is refused on the direct path too")
    func longerSource() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bytes = testBytes(300_000)
        let error = await #expect(throws: ObjectStoreError.self) {
            _ = try await store.put("big/long", from: .stream(OddChunks(bytes: bytes, chunkSize: 40_000), length: 250_000))
        }
        #expect(error?.kind == .sourceChanged)
        #expect(try await store.head("big/long") == nil)
    }

    @Test("names written with a deferred sync are readable at once and synced together")
    func deferredNameSync() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keys = (0..<5).map { "sources/1/object-\($0)" } + ["sources/2/other"]
        for key in keys {
            _ = try await store.put(key, from: .bytes(Array(key.utf8)), options: PutOptions(deferNameSync: true))
        }
        try await store.syncNames(of: keys)
        for key in keys { #expect(try await store.getBytes(key) == Array(key.utf8)) }
        await #expect(throws: ObjectStoreError.self) { try await store.syncNames(of: ["missing/directory/key"]) }
    }

    #if os(Linux)
    @Test("the test directory's file system takes O_DIRECT, so the tests above use the direct path")
    func directPathIsTaken() throws {
        let path = NSTemporaryDirectory() + "direct-\(UUID().uuidString)"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0)
        defer { close(fd); unlink(path) }
        #expect(DirectFileWriter.make(fd: fd, blockSize: 64 << 10) != nil)
    }
    #endif
}
