#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CZlib
import CZstd
import SystemIO

/// A source of bytes read in bounded chunks, synchronously (callers run it on the thread pool). An empty result
/// means the end.
package protocol ChunkReader: AnyObject {
    func read(max: Int) throws -> [UInt8]
}

/// The bytes of a local file, as they are.
package final class PlainFileReader: ChunkReader {
    private let file: UnsafeMutablePointer<FILE>
    private let path: String

    package init(path: String) throws {
        guard let file = fopen(path, "rb") else { throw FileIOError(operation: "open", path: path, errno: errno) }
        self.file = file
        self.path = path
    }

    /// Takes over an open descriptor (closed with the reader).
    package init(descriptor: Int32, path: String) throws {
        guard let file = fdopen(descriptor, "rb") else { throw FileIOError(operation: "open", path: path, errno: errno) }
        self.file = file
        self.path = path
    }

    deinit { fclose(file) }

    package func read(max: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, max, file) }
        if count == 0, ferror(file) != 0 { throw FileIOError(operation: "read", path: path, errno: errno) }
        buffer.removeSubrange(count...)
        return buffer
    }
}

/// The decompressed bytes of a local zstd file, produced as they are asked for (memory: zstd's window and two
/// buffers, whatever the file's size).
package final class ZstdFileReader: ChunkReader {
    private let input: any ChunkReader
    private let context: OpaquePointer
    private var inputBuffer: [UInt8] = []
    private var inputPosition = 0
    private var inputEnded = false
    /// The last call filled its output buffer: zstd may hold more output even without new input.
    private var outputMayBePending = false
    private var frameOpen = false

    package convenience init(path: String) throws {
        try self.init(input: try PlainFileReader(path: path))
    }

    package init(input: any ChunkReader) throws {
        self.input = input
        guard let context = ZSTD_createDCtx() else { throw FormatError.compression("zstd could not allocate a context") }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    package func read(max: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max)
        var produced = 0
        while produced == 0 {
            if inputPosition == inputBuffer.count, !outputMayBePending {
                if inputEnded { break }
                inputBuffer = try input.read(max: ZSTD_DStreamInSize())
                inputPosition = 0
                if inputBuffer.isEmpty {
                    inputEnded = true
                    if frameOpen { throw FormatError.compression("the zstd stream ends in the middle of a frame") }
                    break
                }
            }
            let (consumed, written, hint) = try inputBuffer.withUnsafeBytes { inRaw in
                try output.withUnsafeMutableBytes { outRaw -> (Int, Int, Int) in
                    var inBuffer = ZSTD_inBuffer(src: inRaw.baseAddress, size: inRaw.count, pos: inputPosition)
                    var outBuffer = ZSTD_outBuffer(dst: outRaw.baseAddress, size: outRaw.count, pos: 0)
                    let result = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                    if ZSTD_isError(result) != 0 { throw FormatError.compression(String(cString: ZSTD_getErrorName(result))) }
                    return (inBuffer.pos, outBuffer.pos, result)
                }
            }
            inputPosition = consumed
            produced = written
            outputMayBePending = written == max
            frameOpen = hint != 0
        }
        output.removeSubrange(produced...)
        return output
    }
}

/// The decompressed bytes of a local gzip file (the catalog export), with a line reader on top.
package final class GzipFileReader: ChunkReader, @unchecked Sendable {
    private let input: PlainFileReader
    private var stream = z_stream()
    private var inputBuffer: [UInt8] = []
    private var ended = false
    private var pendingLine: [UInt8] = []
    private var lineBuffer: [UInt8] = []
    private var linePosition = 0

    package init(path: String) throws {
        input = try PlainFileReader(path: path)
        guard czlib_inflate_init_gzip(&stream) == Z_OK else { throw FormatError.compression("zlib could not start a gzip stream") }
    }

    deinit { inflateEnd(&stream) }

    package func read(max: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max)
        var produced = 0
        while produced == 0, !ended {
            if stream.avail_in == 0 {
                inputBuffer = try input.read(max: 256 << 10)
                if inputBuffer.isEmpty { throw FormatError.compression("the gzip stream is truncated") }
            }
            let result = try inputBuffer.withUnsafeMutableBytes { inRaw in
                try output.withUnsafeMutableBytes { outRaw -> Int32 in
                    if stream.avail_in == 0 {
                        stream.next_in = inRaw.baseAddress?.assumingMemoryBound(to: Bytef.self)
                        stream.avail_in = uInt(inRaw.count)
                    }
                    stream.next_out = outRaw.baseAddress!.assumingMemoryBound(to: Bytef.self) + produced
                    stream.avail_out = uInt(outRaw.count - produced)
                    let before = stream.avail_out
                    let result = inflate(&stream, Z_NO_FLUSH)
                    guard result == Z_OK || result == Z_STREAM_END || result == Z_BUF_ERROR else {
                        throw FormatError.compression("the gzip stream is damaged (zlib error \(result))")
                    }
                    produced += Int(before - stream.avail_out)
                    return result
                }
            }
            if result == Z_STREAM_END { ended = true }
        }
        output.removeSubrange(produced...)
        return output
    }

    /// The next line without its newline, or nil at the end.
    package func nextLine() throws -> [UInt8]? {
        while true {
            if let newline = lineBuffer[linePosition...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(lineBuffer[linePosition..<newline])
                linePosition = newline + 1
                return line
            }
            lineBuffer.removeSubrange(..<linePosition)
            linePosition = 0
            let more = try read(max: 1 << 20)
            if more.isEmpty {
                guard !lineBuffer.isEmpty else { return nil }
                defer { lineBuffer = [] }
                return lineBuffer
            }
            lineBuffer += more
        }
    }
}

/// One member of a tar stream, as its headers describe it.
package struct TarEntry: Sendable, Hashable {
    /// The name, from a pax `path` record or GNU long name when there is one.
    package var name: String
    package var size: Int64
    /// The ustar type flag: `0` (or NUL) is a regular file, `2` a symbolic link, `5` a directory, …
    package var typeFlag: UInt8
    /// Offset of the member's data in the uncompressed stream.
    package var dataOffset: Int64

    package init(name: String, size: Int64, typeFlag: UInt8, dataOffset: Int64) {
        self.name = name
        self.size = size
        self.typeFlag = typeFlag
        self.dataOffset = dataOffset
    }

    package var isRegularFile: Bool { typeFlag == UInt8(ascii: "0") || typeFlag == 0 || typeFlag == UInt8(ascii: "7") }
}

/// Reads the members of a tar stream one after the other (ustar, pax `x`/`g` headers, GNU long names). Data
/// not read by the caller is skipped when the next header is asked for. Memory: one chunk.
package final class TarReader {
    private let source: any ChunkReader
    private var buffer: [UInt8] = []
    private var position = 0
    /// Bytes of the stream consumed so far.
    package private(set) var offset: Int64 = 0
    private var remainingData: Int64 = 0
    private var remainingPadding: Int64 = 0

    package init(_ source: any ChunkReader) {
        self.source = source
    }

    /// Exactly `count` bytes (fewer only at the end of the stream).
    private func take(_ count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        while result.count < count {
            if position == buffer.count {
                buffer = try source.read(max: 1 << 20)
                position = 0
                if buffer.isEmpty { break }
            }
            let n = min(count - result.count, buffer.count - position)
            result += buffer[position..<(position + n)]
            position += n
        }
        offset += Int64(result.count)
        return result
    }

    private func skip(_ count: Int64) throws {
        var left = count
        while left > 0 {
            let part = try take(Int(min(left, 1 << 20)))
            guard !part.isEmpty else { throw FormatError.malformedTar("the stream ends inside a member") }
            left -= Int64(part.count)
        }
    }

    /// The next member's header, or nil at the end of the archive.
    package func next() throws -> TarEntry? {
        try skip(remainingData + remainingPadding)
        remainingData = 0
        remainingPadding = 0
        var paxPath: String?
        var paxSize: Int64?
        while true {
            let block = try take(TarFormat.blockSize)
            if block.isEmpty || block.allSatisfy({ $0 == 0 }) { return nil }
            guard block.count == TarFormat.blockSize else { throw FormatError.malformedTar("a header is cut short") }
            guard Self.checksumMatches(block) else { throw FormatError.malformedTar("a header checksum does not match at offset \(offset - 512)") }
            let type = block[156]
            guard let size = Self.number(block[124..<136]) else { throw FormatError.malformedTar("a header has an unreadable size") }
            let padding = Int64(TarFormat.padding(for: size).count)
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                guard size <= 1 << 20 else { throw FormatError.malformedTar("a pax header is larger than 1 MiB") }
                let records = try take(Int(size))
                try skip(padding)
                if type == UInt8(ascii: "x") {
                    for (key, value) in Self.paxRecords(records) {
                        if key == "path" { paxPath = value }
                        if key == "size" { paxSize = Int64(value) }
                    }
                }
            case UInt8(ascii: "L"):
                guard size <= 1 << 20 else { throw FormatError.malformedTar("a long name is larger than 1 MiB") }
                let name = try take(Int(size))
                try skip(padding)
                paxPath = String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
            default:
                var name = String(decoding: block[0..<100].prefix { $0 != 0 }, as: UTF8.self)
                let prefix = String(decoding: block[345..<500].prefix { $0 != 0 }, as: UTF8.self)
                if block[257..<262].elementsEqual("ustar".utf8), !prefix.isEmpty { name = prefix + "/" + name }
                let realSize = paxSize ?? size
                // Only regular files carry data in a ustar stream (links and directories have none to skip).
                let carriesData = type == UInt8(ascii: "0") || type == 0 || type == UInt8(ascii: "7")
                remainingData = carriesData ? realSize : (type == UInt8(ascii: "1") || type == UInt8(ascii: "2") || type == UInt8(ascii: "5") ? 0 : realSize)
                remainingPadding = Int64(TarFormat.padding(for: remainingData).count)
                return TarEntry(name: paxPath ?? name, size: realSize, typeFlag: type, dataOffset: offset)
            }
        }
    }

    /// Up to `max` bytes of the current member's data; empty at its end.
    package func readData(max: Int) throws -> [UInt8] {
        guard remainingData > 0 else { return [] }
        let part = try take(Int(min(Int64(max), remainingData)))
        guard !part.isEmpty else { throw FormatError.malformedTar("the stream ends inside a member") }
        remainingData -= Int64(part.count)
        return part
    }

    package static func checksumMatches(_ block: [UInt8]) -> Bool {
        guard let stored = number(block[148..<156]) else { return false }
        var sum: Int64 = 0
        for (index, byte) in block.enumerated() { sum += (148..<156).contains(index) ? 32 : Int64(byte) }
        return sum == stored
    }

    /// An octal field (NUL or space terminated), or GNU base-256 for large values.
    package static func number(_ field: ArraySlice<UInt8>) -> Int64? {
        if let first = field.first, first & 0x80 != 0 {
            var value: Int64 = Int64(first & 0x7f)
            for byte in field.dropFirst() { value = value << 8 | Int64(byte) }
            return value
        }
        let digits = field.drop { $0 == UInt8(ascii: " ") }.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }
        if digits.isEmpty { return field.allSatisfy({ $0 == 0 || $0 == UInt8(ascii: " ") }) ? 0 : nil }
        return Int64(String(decoding: digits, as: UTF8.self), radix: 8)
    }

    /// `LEN key=value\n` records.
    static func paxRecords(_ bytes: [UInt8]) -> [(String, String)] {
        var result: [(String, String)] = []
        var index = 0
        while index < bytes.count {
            guard let space = bytes[index...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: bytes[index..<space], as: UTF8.self)), length > 0, index + length <= bytes.count else { break }
            let record = bytes[(space + 1)..<(index + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                result.append((String(decoding: record[record.startIndex..<equals], as: UTF8.self),
                               String(decoding: record[(equals + 1)...], as: UTF8.self)))
            }
            index += length
        }
        return result
    }
}
