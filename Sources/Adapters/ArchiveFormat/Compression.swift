#if canImport(Glibc)
import Glibc
#endif
import Crypto
import CZlib
import CZstd
import Foundation
import SystemIO

/// Whether a member's bytes are worth compressing: formats that are compressed already (JPEG, PNG, MP4, ZIP,
/// office documents, archives…) are not, whatever their name says, and neither are names that say so.
package enum Compressibility {
    package static let compressedExtensions: Set<String> = [
        "jpg", "jpeg", "png", "gif", "webp", "heic", "heif", "avif", "jxl",
        "mp4", "m4v", "m4a", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "vob", "mts", "m2ts", "ts", "wmv", "flv", "3gp",
        "mp3", "aac", "ogg", "oga", "opus", "flac", "wma",
        "zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "lz", "lzma", "cab", "jar", "apk", "dmg", "br",
        "docx", "xlsx", "pptx", "odt", "ods", "odp", "epub", "pdf",
    ]

    /// Magic numbers of compressed formats, checked against a member's first bytes.
    package static let compressedSignatures: [[UInt8]] = [
        [0xFF, 0xD8, 0xFF],                    // JPEG
        [0x89, 0x50, 0x4E, 0x47],              // PNG
        [0x50, 0x4B, 0x03, 0x04],              // ZIP and the office formats
        [0x1F, 0x8B],                          // gzip
        [0x28, 0xB5, 0x2F, 0xFD],              // zstd
        [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00],  // xz
        [0x42, 0x5A, 0x68],                    // bzip2
        [0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C],  // 7z
        [0x52, 0x61, 0x72, 0x21],              // RAR
        [0x47, 0x49, 0x46, 0x38],              // GIF
        [0x1A, 0x45, 0xDF, 0xA3],              // Matroska/WebM
    ]

    package static func isCompressed(name: String, firstBytes: some Collection<UInt8>) -> Bool {
        let ext = (name as NSString).pathExtension.lowercased()
        if compressedExtensions.contains(ext) { return true }
        let head = Array(firstBytes.prefix(12))
        if compressedSignatures.contains(where: { head.starts(with: $0) }) { return true }
        // ISO base media (MP4, MOV, HEIC, 3GP): "ftyp" at offset 4.
        if head.count >= 8, head[4...7].elementsEqual("ftyp".utf8) { return true }
        return false
    }
}

/// zstd over a whole local file, in bounded chunks (the caller runs it on the thread pool).
package enum ZstdFile {
    /// Compresses `source` into `destination`; returns the compressed size and its SHA-256.
    package static func compress(_ source: String, to destination: String, level: Int32) throws -> (size: Int64, sha256: String) {
        guard let input = fopen(source, "rb") else { throw FileIOError(operation: "open", path: source, errno: errno) }
        defer { fclose(input) }
        guard let output = fopen(destination, "wb") else { throw FileIOError(operation: "create", path: destination, errno: errno) }
        defer { fclose(output) }
        guard let context = ZSTD_createCCtx() else { throw FormatError.compression("zstd could not allocate a context") }
        defer { ZSTD_freeCCtx(context) }
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        // Both cores: zstd's worker threads (ignored by a library built without them).
        ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, 2)

        let inputCapacity = ZSTD_CStreamInSize()
        let outputCapacity = ZSTD_CStreamOutSize()
        var inputBuffer = [UInt8](repeating: 0, count: inputCapacity)
        var outputBuffer = [UInt8](repeating: 0, count: outputCapacity)
        var hasher = SHA256()
        var written: Int64 = 0

        func drain(_ mode: ZSTD_EndDirective, _ inBuffer: inout ZSTD_inBuffer) throws -> Int {
            var remaining = 0
            repeat {
                remaining = try outputBuffer.withUnsafeMutableBytes { raw -> Int in
                    var outBuffer = ZSTD_outBuffer(dst: raw.baseAddress, size: raw.count, pos: 0)
                    let result = ZSTD_compressStream2(context, &outBuffer, &inBuffer, mode)
                    if ZSTD_isError(result) != 0 { throw FormatError.compression(String(cString: ZSTD_getErrorName(result))) }
                    if outBuffer.pos > 0 {
                        guard fwrite(raw.baseAddress, 1, outBuffer.pos, output) == outBuffer.pos else {
                            throw FileIOError(operation: "write", path: destination, errno: errno)
                        }
                        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: raw[0..<outBuffer.pos]))
                        written += Int64(outBuffer.pos)
                    }
                    return result
                }
            } while (mode == ZSTD_e_end && remaining != 0) || inBuffer.pos < inBuffer.size
            return remaining
        }

        while true {
            let count = inputBuffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, inputCapacity, input) }
            if count == 0 {
                if ferror(input) != 0 { throw FileIOError(operation: "read", path: source, errno: errno) }
                break
            }
            try inputBuffer.withUnsafeBytes { raw in
                var inBuffer = ZSTD_inBuffer(src: raw.baseAddress, size: count, pos: 0)
                _ = try drain(ZSTD_e_continue, &inBuffer)
            }
        }
        var empty = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        _ = try drain(ZSTD_e_end, &empty)
        guard fflush(output) == 0, fsync(fileno(output)) == 0 else { throw FileIOError(operation: "sync", path: destination, errno: errno) }
        return (written, hex(hasher.finalize()))
    }

    /// Decompresses a whole zstd file (for tests and bundle rewrites).
    package static func decompress(_ source: String, to destination: String) throws {
        let reader = try ZstdFileReader(path: source)
        guard let output = fopen(destination, "wb") else { throw FileIOError(operation: "create", path: destination, errno: errno) }
        defer { fclose(output) }
        while true {
            let chunk = try reader.read(max: 1 << 20)
            if chunk.isEmpty { break }
            guard fwrite(chunk, 1, chunk.count, output) == chunk.count else { throw FileIOError(operation: "write", path: destination, errno: errno) }
        }
        guard fflush(output) == 0 else { throw FileIOError(operation: "write", path: destination, errno: errno) }
    }
}

/// A gzip stream written to a local file (the catalog export: any tool can read it). Used by one task at a
/// time, from the thread pool.
package final class GzipFileWriter: @unchecked Sendable {
    private var stream = z_stream()
    private let file: UnsafeMutablePointer<FILE>
    private let path: String
    private var outputBuffer = [UInt8](repeating: 0, count: 256 << 10)
    private var finished = false

    package init(creating path: String, level: Int32 = 6) throws {
        guard let file = fopen(path, "wb") else { throw FileIOError(operation: "create", path: path, errno: errno) }
        self.file = file
        self.path = path
        guard czlib_deflate_init_gzip(&stream, level) == Z_OK else {
            fclose(file)
            throw FormatError.compression("zlib could not start a gzip stream")
        }
    }

    deinit {
        if !finished { deflateEnd(&stream) }
        fclose(file)
    }

    package func write(_ bytes: [UInt8]) throws { try deflate(bytes, flush: Z_NO_FLUSH) }

    package func finish() throws {
        try deflate([], flush: Z_FINISH)
        deflateEnd(&stream)
        finished = true
        guard fflush(file) == 0, fsync(fileno(file)) == 0 else { throw FileIOError(operation: "sync", path: path, errno: errno) }
    }

    /// zpipe.c's loop: deflate until zlib leaves room in the output buffer (all input consumed; with Z_FINISH,
    /// the stream ended).
    private func deflate(_ bytes: [UInt8], flush: Int32) throws {
        var bytes = bytes
        try bytes.withUnsafeMutableBytes { input in
            stream.next_in = input.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_in = uInt(input.count)
            var outputFull = true
            while outputFull {
                outputFull = try outputBuffer.withUnsafeMutableBytes { output -> Bool in
                    stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(output.count)
                    let result = CZlib.deflate(&stream, flush)
                    guard result != Z_STREAM_ERROR else { throw FormatError.compression("zlib deflate failed") }
                    let produced = output.count - Int(stream.avail_out)
                    guard fwrite(output.baseAddress, 1, produced, file) == produced else {
                        throw FileIOError(operation: "write", path: path, errno: errno)
                    }
                    return stream.avail_out == 0
                }
            }
        }
    }
}
