#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import SystemIO

/// An image's UDF file system, listed with ``UDFParser`` on the thread pool, whose files are read by streaming
/// their extents from the image (bounded memory: one chunk at a time, however large the file).
public final class UDFImage: Sendable {
    public let path: RawPath
    public let volume: UDFVolume
    private let handle: ImageHandle

    private init(path: RawPath, volume: UDFVolume, handle: ImageHandle) {
        self.path = path
        self.volume = volume
        self.handle = handle
    }

    /// True when the image's Volume Recognition Sequence announces UDF (NSR02 or NSR03 between BEA01 and TEA01).
    public static func hasUDF(_ path: RawPath) async throws -> Bool {
        try await blocking {
            let handle = try ImageHandle(path)
            return try UDFParser.hasUDF(imageSize: handle.size) { try handle.read(at: $0, count: $1) }
        }
    }

    /// Opens the image and lists its UDF tree. Throws ``IngestError/Code/unreadableUDF`` when the file system is
    /// corrupt or of a kind this reader does not handle, other codes when the image cannot be opened or read.
    public static func open(_ path: RawPath) async throws -> UDFImage {
        let (handle, volume) = try await blocking { () -> (ImageHandle, UDFVolume) in
            let handle = try ImageHandle(path)
            var parser = UDFParser(path: path.string, imageSize: handle.size) { try handle.read(at: $0, count: $1) }
            return (handle, try parser.list())
        }
        return UDFImage(path: path, volume: volume, handle: handle)
    }

    /// Every entry as an ``ISOEntry``, files in the order their data lies in the image (one forward pass over a
    /// disc); a file sharing its File Entry with an earlier one is a hard link to it.
    public var entries: [ISOEntry] { members.map(\.entry) }

    /// The entries with their content, in the order of ``entries``.
    var members: [(entry: ISOEntry, file: UDFFile)] {
        let directories = volume.files.filter { $0.kind == .directory }
        let rest = volume.files.filter { $0.kind != .directory }.enumerated().sorted { a, b in
            let left = a.element.firstImageOffset ?? 0, right = b.element.firstImageOffset ?? 0
            return left != right ? left < right : a.offset < b.offset
        }.map(\.element)
        var firstName: [UInt64: RawPath] = [:]
        return (directories + rest).map { file in
            let type: ISOEntryType
            switch file.kind {
            case .file:
                if let first = firstName[file.entry] {
                    type = .hardlink(target: first)
                } else {
                    firstName[file.entry] = file.path
                    type = .file
                }
            case .directory: type = .directory
            case .symlink(let target): type = .symlink(target: target)
            case .other(let mode): type = .other(mode: mode)
            }
            let size: Int64 = if case .file = type { file.size } else { 0 }
            return (ISOEntry(path: file.path, size: size, modificationTime: file.modificationTime, type: type, mode: file.mode, warning: nil), file)
        }
    }

    /// Reads every entry like ``ISOImageReader/read(_:configuration:_:)``: `body` gets each entry and, for
    /// files, its content (which it may read or ignore).
    @discardableResult
    public func read(configuration: ISOReaderConfiguration = .init(), _ body: (ISOEntry, UDFFileContents) async throws -> Void) async throws -> ISOReadSummary {
        guard configuration.chunkSize > 0 else { throw IngestError(.invalidArgument, path: path.string, "chunk size must be positive") }
        var summary = ISOReadSummary()
        for (entry, file) in members {
            try Task.checkCancellation()
            summary.count(entry)
            let pieces: [UDFPiece] = if case .file = entry.type { file.pieces } else { [] }
            try await body(entry, UDFFileContents(handle: handle, path: path, member: entry.path, pieces: pieces, size: entry.size, chunkSize: configuration.chunkSize))
        }
        return summary
    }
}

extension ISOReadSummary {
    mutating func count(_ entry: ISOEntry) {
        switch entry.type {
        case .file: files += 1; bytes += entry.size
        case .directory: directories += 1
        case .symlink: symlinks += 1
        case .hardlink: hardlinks += 1
        case .other: others += 1
        }
    }
}

/// The content of one UDF file as chunks of at most the configured size, read from the image on the thread pool.
public struct UDFFileContents: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    fileprivate let handle: ImageHandle
    let path: RawPath
    let member: RawPath
    let pieces: [UDFPiece]
    let size: Int64
    let chunkSize: Int

    public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
        let contents: UDFFileContents
        var piece = 0
        var offsetInPiece: Int64 = 0
        var delivered: Int64 = 0

        public mutating func next() async throws -> ByteBuffer? {
            guard delivered < contents.size else { return nil }
            let want = Int(Swift.min(Int64(contents.chunkSize), contents.size - delivered))
            let start = (piece, offsetInPiece)
            let contents = self.contents
            let (chunk, end) = try await blocking { try contents.read(count: want, from: start) }
            (piece, offsetInPiece) = end
            delivered += Int64(chunk.readableBytes)
            return chunk
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(contents: self) }

    /// `count` bytes from a position (piece, offset in it); returns them and the position after them.
    fileprivate func read(count: Int, from start: (Int, Int64)) throws -> (ByteBuffer, (Int, Int64)) {
        var (piece, offset) = start
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        while buffer.readableBytes < count {
            guard piece < pieces.count else {
                throw IngestError(.readFailed, path: path.string, "\(member.string): the UDF extents end before the file's \(size) bytes")
            }
            let take = Int(Swift.min(Int64(count - buffer.readableBytes), pieces[piece].length - offset))
            switch pieces[piece] {
            case .recorded(let at, _):
                try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: take) { target in
                    try handle.read(at: at + offset, into: UnsafeMutableRawBufferPointer(rebasing: target.prefix(take)), member: member)
                    return take
                }
            case .zeros:
                buffer.writeRepeatingByte(0, count: take)
            case .embedded(let bytes):
                buffer.writeBytes(bytes[Int(offset)..<(Int(offset) + take)])
            }
            offset += Int64(take)
            if offset == pieces[piece].length {
                piece += 1
                offset = 0
            }
        }
        return (buffer, (piece, offset))
    }
}

/// An image opened read-only for positioned reads; closed when the last user lets go.
private final class ImageHandle: Sendable {
    let path: RawPath
    let descriptor: Int32
    let size: Int64

    init(_ path: RawPath) throws {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw IngestError.system(.cannotOpen, path: path.string, errno: errno, "cannot open the image") }
        let end = lseek(fd, 0, SEEK_END)  // also right for a block device
        guard end >= 0 else {
            let code = errno
            closeDescriptor(fd)
            throw IngestError.system(.cannotOpen, path: path.string, errno: code, "cannot find the image's size")
        }
        (self.path, self.descriptor, self.size) = (path, fd, Int64(end))
    }

    deinit { closeDescriptor(descriptor) }

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(at: offset, into: $0, member: nil) }
        return bytes
    }

    /// Fills `target` from `offset`, retrying short reads; the end of the image before that is an error.
    func read(at offset: Int64, into target: UnsafeMutableRawBufferPointer, member: RawPath?) throws {
        var done = 0
        let what = member.map { "\($0.string): " } ?? ""
        while done < target.count {
            let got = pread(descriptor, target.baseAddress! + done, target.count - done, off_t(offset + Int64(done)))
            if got < 0 {
                if errno == EINTR { continue }
                throw IngestError.system(.readFailed, path: path.string, errno: errno, "\(what)read failed at offset \(offset + Int64(done))")
            }
            guard got > 0 else {
                throw IngestError(.readFailed, path: path.string, "\(what)the image ends at byte \(offset + Int64(done)), before the \(target.count) bytes wanted at \(offset): truncated image")
            }
            done += got
        }
    }
}
