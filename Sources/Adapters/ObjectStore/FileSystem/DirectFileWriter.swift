#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import NIOCore
import SystemIO

#if os(Linux) && arch(x86_64)
/// Glibc's module map does not export `O_DIRECT` (it needs `_GNU_SOURCE`); the value is per architecture.
private let directFlag: Int32? = 0o40000
#elseif os(Linux) && arch(arm64)
private let directFlag: Int32? = 0o200000
#else
private let directFlag: Int32? = nil
#endif

/// Writes a new file with `O_DIRECT`: the bytes go from two aligned buffers to the device without passing through
/// the page cache, and the next block is filled (and hashed) while the previous one is being written.
///
/// Why: a staged object is written once and read back only by the archiver, often much later. Through the page
/// cache, a large object costs a second copy of every byte and evicts the user's cache, and its fsync has to
/// write it all anyway. Measured on the benchmark VM, four concurrent 384 MiB objects took 6.9 s of system time
/// buffered against 1.0 s direct (docs/benchmarks.md).
///
/// Aligned stretches of zeros are not written (``SparseWrite``): they stay holes in the new file.
///
/// Where the file system refuses `O_DIRECT` (tmpfs, some network file systems), ``make(fd:blockSize:)`` returns
/// nil and the caller writes buffered; a write refused with `EINVAL` (an alignment the device does not accept)
/// turns `O_DIRECT` off and is written buffered. Used by one task at a time.
final class DirectFileWriter: @unchecked Sendable {
    /// Buffer address, file offset and write length are multiples of this (the largest logical block in use).
    static let alignment = 4096

    let fd: Int32
    let blockSize: Int
    private let buffers: [UnsafeMutableRawPointer]
    private var current = 0
    private var filled = 0
    private var offset: Int64 = 0
    /// The write of the buffer that is not being filled, if one is under way.
    private var pendingWrite: Task<Void, any Error>?

    private init(fd: Int32, blockSize: Int, buffers: [UnsafeMutableRawPointer]) {
        self.fd = fd
        self.blockSize = blockSize
        self.buffers = buffers
    }

    deinit {
        // Every path that ends a write awaits `pendingWrite` first (``finish(length:)`` or ``drain()``).
        buffers.forEach { free($0) }
    }

    /// Turns on `O_DIRECT` for `fd` (a new, empty file) and allocates the buffers; nil where it is not supported.
    static func make(fd: Int32, blockSize: Int) -> DirectFileWriter? {
        guard let directFlag else { return nil }
        let blockSize = max(alignment, blockSize / alignment * alignment)
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | directFlag) == 0 else { return nil }
        var buffers: [UnsafeMutableRawPointer] = []
        for _ in 0..<2 {
            var pointer: UnsafeMutableRawPointer?
            guard posix_memalign(&pointer, alignment, blockSize) == 0, let pointer else {
                buffers.forEach { free($0) }
                _ = fcntl(fd, F_SETFL, flags)
                return nil
            }
            buffers.append(pointer)
        }
        return DirectFileWriter(fd: fd, blockSize: blockSize, buffers: buffers)
    }

    /// Hashes `chunk` into `hasher` and copies it into the block being filled; a full block starts being written.
    func write(_ chunk: ByteBuffer, hashing hasher: SHA256) async throws -> SHA256 {
        var chunk = chunk
        var hasher = hasher
        while chunk.readableBytes > 0 {
            let piece = chunk.readSlice(length: min(chunk.readableBytes, blockSize - filled))!
            let target = Int(bitPattern: buffers[current] + filled)
            hasher = try await blocking { [hasher] in
                var hasher = hasher
                piece.withUnsafeReadableBytes { bytes in
                    hasher.update(bufferPointer: bytes)
                    UnsafeMutableRawPointer(bitPattern: target)!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                }
                return hasher
            }
            filled += piece.readableBytes
            if filled == blockSize { try await startWrite(length: blockSize) }
        }
        return hasher
    }

    /// Writes what is left (padded to the alignment), waits for every write, and cuts the file to `length`.
    func finish(length: Int64) async throws {
        if filled > 0 {
            let padded = (filled + Self.alignment - 1) / Self.alignment * Self.alignment
            memset(buffers[current] + filled, 0, padded - filled)
            try await startWrite(length: padded)
        }
        let last = pendingWrite
        pendingWrite = nil
        try await last?.value
        guard ftruncate(fd, off_t(length)) == 0 else { throw FileIOError(operation: "ftruncate", errno: errno) }
    }

    /// Waits for a write under way, ignoring its outcome: call before closing the descriptor after a failure.
    func drain() async {
        _ = try? await pendingWrite?.value
        pendingWrite = nil
    }

    /// Starts writing the current buffer and switches to the other one, once that one's write has finished.
    private func startWrite(length: Int) async throws {
        let previous = pendingWrite
        pendingWrite = nil
        try await previous?.value
        let (fd, offset) = (self.fd, self.offset)
        let address = Int(bitPattern: buffers[current])
        // The task holds `self`, so the buffers outlive the write even if the caller's task is cancelled.
        pendingWrite = Task { [self] in
            try await blocking { try Self.writeAll(fd: fd, address: address, count: length, offset: offset) }
            _ = self
        }
        self.offset += Int64(length)
        current ^= 1
        filled = 0
    }

    /// Writes the block, leaving its aligned all-zero stretches as holes (the file is new, so they read as zeros;
    /// ``finish(length:)`` sets the full length): a mostly empty disc image costs the store only what it holds.
    private static func writeAll(fd: Int32, address: Int, count: Int, offset: Int64) throws {
        let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address), count: count)
        try SparseWrite.writeSkippingZeros(bytes, at: offset) { stretch, at in
            try POSIXFile.writeAll(fd: fd, stretch, at: at) { code in
                // The device wants another alignment: go on through the page cache.
                guard code == EINVAL, let directFlag, case let flags = fcntl(fd, F_GETFL), flags >= 0, flags & directFlag != 0 else { return false }
                _ = fcntl(fd, F_SETFL, flags & ~directFlag)
                return true
            }
        }
    }
}
