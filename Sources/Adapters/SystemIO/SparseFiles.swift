#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Leaves runs of zeros as holes when writing a file's new region (GNU `cp --sparse=always`, restic's
/// `restore --sparse`): a 50 GB disc image that is mostly unused sectors then costs the disk what it holds, not
/// 50 GB, in staging, in the archive and where it is restored. The bytes read back are the same either way.
///
/// Only for a region that already reads as zeros: a new file, or past a file's end. A skipped run at the end of the
/// file must be made part of it by the caller (`ftruncate` to the full length).
public enum SparseWrite {
    /// Zero runs are skipped in aligned stretches of this size (a multiple of every block size in use, so an
    /// `O_DIRECT` writer's offsets stay aligned). Shorter runs of zeros, common in any file, are written.
    public static let holeGranularity = 64 << 10

    /// True when every byte is zero (an empty buffer too). Compares the buffer with itself shifted by one byte, so
    /// the C library's vectorised `memcmp` does the work; stops at the first non-zero byte.
    public static func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        guard base.load(as: UInt8.self) == 0 else { return false }
        return memcmp(base, base + 1, bytes.count - 1) == 0
    }

    /// Hands `write` each stretch of `bytes` (meant for file offset `offset`) that is not an aligned all-zero
    /// stretch of ``holeGranularity``, adjacent stretches joined into one call. Returns the bytes handed on.
    @discardableResult
    public static func writeSkippingZeros(
        _ bytes: UnsafeRawBufferPointer, at offset: Int64, _ write: (UnsafeRawBufferPointer, Int64) throws -> Void
    ) rethrows -> Int {
        guard bytes.count > 0 else { return 0 }
        var written = 0
        var runStart: Int?  // start of the non-zero stretches not handed on yet
        var position = 0
        while position < bytes.count {
            let boundary = holeGranularity - Int((offset + Int64(position)) % Int64(holeGranularity))
            let end = min(bytes.count, position + boundary)
            let stretch = UnsafeRawBufferPointer(rebasing: bytes[position..<end])
            // Only a whole aligned stretch can become a hole; a partial one at either edge is written.
            if end - position == holeGranularity, isAllZero(stretch) {
                if let start = runStart {
                    try write(UnsafeRawBufferPointer(rebasing: bytes[start..<position]), offset + Int64(start))
                    written += position - start
                    runStart = nil
                }
            } else if runStart == nil {
                runStart = position
            }
            position = end
        }
        if let start = runStart {
            try write(UnsafeRawBufferPointer(rebasing: bytes[start...]), offset + Int64(start))
            written += bytes.count - start
        }
        return written
    }
}

/// Reads holes without reading them: a range of a file that lies in one hole is answered with zeros from memory, not
/// by the kernel clearing page-cache pages and copying them out (measured: three quarters of the archiver's CPU on a
/// mostly empty disc image, before). Ranges with any data in them are read as usual.
public enum SparseRead {
    #if os(Linux)
    /// Glibc's module map does not export `SEEK_DATA` (it needs `_GNU_SOURCE`); the value is the same everywhere.
    private static let seekData: Int32 = 3
    #endif

    /// True when all `count` bytes at `offset` lie in a hole of the regular file `fd`; false when unsure (no
    /// `SEEK_DATA`, a device, a range past the end) or for short ranges, which are not worth a system call.
    /// Moves the descriptor's file position: only for descriptors read with `pread`.
    public static func isHole(fd: Int32, offset: Int64, count: Int) -> Bool {
        #if os(Linux)
        guard count >= SparseWrite.holeGranularity else { return false }
        let data = lseek(fd, off_t(offset), seekData)
        if data >= 0 { return Int64(data) >= offset + Int64(count) }
        // ENXIO: no data from `offset` on; also the answer past the end, so the size must cover the range.
        guard errno == ENXIO else { return false }
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && Int64(info.st_size) >= offset + Int64(count)
        #else
        return false
        #endif
    }

    private static let zeroBlock = ByteBuffer(repeating: 0, count: 4 << 20)

    /// `count` zero bytes; up to 4 MiB they share one buffer allocated once (a writer gets its own copy).
    public static func zeros(_ count: Int) -> ByteBuffer {
        guard count <= zeroBlock.readableBytes else { return ByteBuffer(repeating: 0, count: count) }
        return zeroBlock.getSlice(at: 0, length: count)!
    }
}
