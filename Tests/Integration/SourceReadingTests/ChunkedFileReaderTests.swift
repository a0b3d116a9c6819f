import Foundation
import Synchronization
import Testing
@testable import SourceReading
import NIOCore

/// A file that fails reads at chosen offsets: `failures[offset]` = how many attempts fail (Int.max: always).
final class FlakyFile: PositionalFile {
    let bytes: [UInt8]
    let failures: Mutex<[Int64: Int]>
    let attempts = Mutex<[Int64: Int]>([:])
    let closed = Mutex(false)
    /// Ranges passed to `dropCachedPages`, in order.
    let dropped = Mutex<[(offset: Int64, length: Int64)]>([])

    init(bytes: [UInt8], failures: [Int64: Int]) {
        self.bytes = bytes
        self.failures = Mutex(failures)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        attempts.withLock { $0[offset, default: 0] += 1 }
        let fail = failures.withLock { failures -> Bool in
            guard let left = failures[offset], left > 0 else { return false }
            failures[offset] = left == Int.max ? left : left - 1
            return true
        }
        if fail { throw IngestError.system(.readFailed, path: "/flaky", errno: EIO, "read failed at offset \(offset)") }
        guard offset < bytes.count else { return 0 }
        // Short reads on purpose: at most 1000 bytes per call, like a pipe or a slow device may do.
        let count = min(buffer.count, bytes.count - Int(offset), 1000)
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<(Int(offset) + count)])) }
        return count
    }

    func dropCachedPages(offset: Int64, length: Int64) { dropped.withLock { $0.append((offset, length)) } }

    func close() { closed.withLock { $0 = true } }
}

@Suite struct ChunkedFileReaderTests {
    @Test func readsARealFileInChunks() async throws {
        let dir = try TemporaryDirectory()
        let bytes = pseudoRandomBytes(5 * 1024 * 1024 + 7)
        let path = try dir.write("file.bin", bytes)
        var sizes: [Int] = []
        let reader = ChunkedFileReader(path: RawPath(path), expectedSize: Int64(bytes.count), configuration: .init(chunkSize: 1 << 20))
        let (size, hash) = try await reader.forEachChunk { sizes.append($0.readableBytes) }
        #expect(size == Int64(bytes.count))
        #expect(hash == SHA256Stream.hash(bytes))
        #expect(sizes == [1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 7])
    }

    @Test func emptyFileHasNoChunksAndTheEmptyHash() async throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("empty", [])
        let (size, hash) = try await ChunkedFileReader(path: RawPath(path), expectedSize: 0).sha256()
        #expect(size == 0)
        #expect(hash == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func sha256MatchesKnownVector() {
        #expect(SHA256Stream.hash(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var stream = SHA256Stream()
        stream.update(Array("a".utf8))
        stream.update(ByteBuffer(string: "bc"))
        #expect(stream.finalize() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(stream.byteCount == 3)
    }

    @Test func transientErrorIsRetriedAndTheBytesAreRight() async throws {
        let bytes = pseudoRandomBytes(10_000)
        let file = FlakyFile(bytes: bytes, failures: [4096: 2])
        let reader = ChunkedFileReader(path: "/flaky", configuration: .init(chunkSize: 4096, retries: 3, retryDelay: .zero)) { file }
        let (size, hash) = try await reader.sha256()
        #expect(size == 10_000)
        #expect(hash == SHA256Stream.hash(bytes))
        #expect(file.attempts.withLock { $0[4096] } == 3)
        #expect(file.closed.withLock { $0 })
    }

    @Test func persistentErrorNamesPathOffsetErrnoAndAttempts() async throws {
        let file = FlakyFile(bytes: pseudoRandomBytes(10_000), failures: [8192: Int.max])
        let reader = ChunkedFileReader(path: "/media/cdrom/VIDEO_TS/VTS_01_1.VOB", configuration: .init(chunkSize: 4096, retries: 2, retryDelay: .zero)) { file }
        var delivered = 0
        do {
            for try await chunk in reader { delivered += chunk.readableBytes }
            Issue.record("the read should have failed")
        } catch let error as IngestError {
            #expect(error.code == .readFailed)
            #expect(error.errno == EIO)
            #expect(error.description == "/media/cdrom/VIDEO_TS/VTS_01_1.VOB: read failed at offset 8192: Input/output error (after 3 attempts)")
        }
        #expect(delivered == 8192)
        #expect(file.attempts.withLock { $0[8192] } == 3)
    }

    /// The first read is made in the same call as the open; it is tried again exactly as often as any other.
    @Test func aFailedFirstReadIsRetriedAsOften() async throws {
        let bytes = pseudoRandomBytes(10_000)
        let flaky = FlakyFile(bytes: bytes, failures: [0: 2])
        let (size, hash) = try await ChunkedFileReader(path: "/flaky", configuration: .init(chunkSize: 4096, retries: 3, retryDelay: .zero)) { flaky }.sha256()
        #expect(size == 10_000 && hash == SHA256Stream.hash(bytes))
        #expect(flaky.attempts.withLock { $0[0] } == 3)
        #expect(flaky.closed.withLock { $0 })

        for (retries, message) in [(2, "/disc/a.vob: read failed at offset 0: Input/output error (after 3 attempts)"),
                                   (0, "/disc/a.vob: read failed at offset 0: Input/output error")] {
            let broken = FlakyFile(bytes: bytes, failures: [0: Int.max])
            let reader = ChunkedFileReader(path: "/disc/a.vob", configuration: .init(chunkSize: 4096, retries: retries, retryDelay: .zero)) { broken }
            let error = await #expect(throws: IngestError.self) { _ = try await reader.sha256() }
            #expect(error?.code == .readFailed && error?.errno == EIO)
            #expect(error?.description == message)
            #expect(broken.attempts.withLock { $0[0] } == retries + 1)
            #expect(broken.closed.withLock { $0 })
        }
    }

    @Test func fileThatChangedSizeIsRefused() async throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("grew", pseudoRandomBytes(3000))
        await #expect {
            _ = try await ChunkedFileReader(path: RawPath(path), expectedSize: 2000, configuration: .init(chunkSize: 1024)).sha256()
        } throws: { ($0 as? IngestError)?.code == .sourceChanged }
        await #expect {
            _ = try await ChunkedFileReader(path: RawPath(path), expectedSize: 4000).sha256()
        } throws: { ($0 as? IngestError)?.code == .sourceChanged }
    }

    @Test func missingFileFailsWithCannotOpen() async throws {
        await #expect {
            _ = try await ChunkedFileReader(path: "/nonexistent/file").sha256()
        } throws: { error in
            (error as? IngestError)?.description == "/nonexistent/file: cannot open: No such file or directory"
        }
    }

    @Test func readAheadOffMatchesReadAheadOn() async throws {
        let dir = try TemporaryDirectory()
        let bytes = pseudoRandomBytes(300_000)
        let path = try dir.write("f", bytes)
        let on = try await ChunkedFileReader(path: RawPath(path), configuration: .init(chunkSize: 4096, readAhead: true)).sha256()
        let off = try await ChunkedFileReader(path: RawPath(path), configuration: .init(chunkSize: 4096, readAhead: false)).sha256()
        #expect(on.sha256 == off.sha256)
        #expect(on.sha256 == SHA256Stream.hash(bytes))
    }

    @Test func aShortChunkEndsTheFileWithoutAnotherReadAndConsumedPagesAreDropped() async throws {
        let bytes = pseudoRandomBytes(10_000)
        let file = FlakyFile(bytes: bytes, failures: [:])
        let reader = ChunkedFileReader(path: "/flaky", expectedSize: Int64(bytes.count), configuration: .init(chunkSize: 4096)) { file }
        let (size, hash) = try await reader.sha256()
        #expect(size == 10_000 && hash == SHA256Stream.hash(bytes))
        // The last chunk asks for the 1,808 bytes left plus one; the read at the end that proves it is the only one.
        #expect(file.attempts.withLock { $0[10_000] } == 1)
        let dropped = file.dropped.withLock { $0 }
        #expect(dropped.contains { $0.offset == 0 && $0.length == 4096 }, "the first chunk's pages are let go while reading on: \(dropped)")
        #expect(dropped.last.map { $0.offset == 0 && $0.length == 0 } == true, "the whole file at the end: \(dropped)")
        #expect(file.closed.withLock { $0 })
    }
}
