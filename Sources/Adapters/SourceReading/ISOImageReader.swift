#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import SystemIO

public enum ISOEntryType: Sendable, Hashable {
    case file
    case directory
    case symlink(target: RawPath)
    /// Another path for the content of an earlier entry (Rock Ridge hard links, or directory records that share
    /// an extent). libarchive delivers the bytes only with the first path: record this one as a copy of `target`.
    case hardlink(target: RawPath)
    /// Device nodes, FIFOs, sockets (possible with Rock Ridge); they have no content to keep.
    case other(mode: UInt32)
}

/// One member of an ISO image.
public struct ISOEntry: Sendable, Hashable {
    /// Path inside the image, `/`-separated, no leading `./` or trailing `/`; byte-exact as libarchive gives it
    /// (Rock Ridge names as recorded, Joliet names converted to UTF-8).
    public let path: RawPath
    /// Content size in bytes (0 for everything that is not a file).
    public let size: Int64
    public let modificationTime: Date?
    public let type: ISOEntryType
    /// Permission bits and type as recorded (Rock Ridge), or libarchive's defaults for plain ISO 9660 / Joliet.
    public let mode: UInt32
    /// A libarchive warning about this entry (for example a name it could not convert), or nil.
    public let warning: String?
}

public struct ISOReaderConfiguration: Sendable, Hashable {
    /// Bytes per chunk handed to the consumer.
    public var chunkSize: Int
    public init(chunkSize: Int = 1 << 20) { self.chunkSize = chunkSize }
}

public struct ISOReadSummary: Sendable, Hashable {
    public var files = 0
    public var directories = 0
    public var symlinks = 0
    public var hardlinks = 0
    public var others = 0
    public var bytes: Int64 = 0
}

/// Reads an ISO 9660 image (with Joliet and Rock Ridge) in place with libarchive, without mounting it: the
/// entries in the order their data lies in the image, and each file's bytes in chunks, so a caller can hash and
/// upload every member in one sequential pass over the image.
///
/// libarchive blocks, so every call runs on NIO's thread pool with a UTF-8 `LC_CTYPE` for that thread only
/// (libarchive converts Joliet's UCS-2 names through the current locale; the process locale is left alone).
/// Use one reader from one task at a time: `nextEntry()`, then optionally ``contents()`` (or ``readChunk()``)
/// for that entry; unread content is skipped by the next `nextEntry()`.
public final class ISOImageReader: @unchecked Sendable {
    public let path: RawPath
    public let configuration: ISOReaderConfiguration
    private let library: LibArchive
    private var archive: OpaquePointer?
    private var current: (entry: ISOEntry, delivered: Int64, generation: Int)?
    private var generation = 0

    private init(path: RawPath, configuration: ISOReaderConfiguration, library: LibArchive, archive: OpaquePointer) {
        self.library = library
        self.path = path
        self.configuration = configuration
        self.archive = archive
    }

    deinit {
        if let archive { _ = library.readFree(archive) }
    }

    /// Opens the image and checks that it is ISO 9660.
    public static func open(_ path: RawPath, configuration: ISOReaderConfiguration = .init()) async throws -> ISOImageReader {
        guard configuration.chunkSize > 0 else { throw IngestError(.invalidArgument, path: path.string, "chunk size must be positive") }
        let opened = try await blocking { () -> (archive: ArchiveBox, library: LibArchive) in
            let library = try LibArchive.loaded(for: path)
            return try withUTF8CType {
                guard let archive = library.readNew() else {
                    throw IngestError(.archiveFailed, path: path.string, "libarchive could not allocate a reader")
                }
                _ = library.readSupportFormatISO9660(archive)
                let status = path.withCString { library.readOpenFilename(archive, $0, 64 * 1024) }
                guard status == LibArchive.ok || status == LibArchive.warning else {
                    let error = archiveError(library, archive, path: path, "cannot open the image")
                    _ = library.readFree(archive)
                    throw error
                }
                return (ArchiveBox(archive), library)
            }
        }
        return ISOImageReader(path: path, configuration: configuration, library: opened.library, archive: opened.archive.pointer)
    }

    /// The next member, or nil at the end of the image. Content of the previous member that was not read is
    /// skipped (libarchive reads forward only).
    public func nextEntry() async throws -> ISOEntry? {
        generation += 1
        current = nil
        let entry = try await blocking { try withUTF8CType { try self.readHeader() } }
        if let entry { current = (entry, 0, generation) }
        return entry
    }

    /// The next chunk of the current member's content (at most ``ISOReaderConfiguration/chunkSize`` bytes), or
    /// nil when it is complete. Throws when the image ends early or its data cannot be read.
    public func readChunk() async throws -> ByteBuffer? {
        guard let current, case .file = current.entry.type else { return nil }
        if current.delivered >= current.entry.size { return nil }
        let chunkSize = configuration.chunkSize
        let chunk = try await blocking { try withUTF8CType { try self.readData(max: chunkSize) } }
        self.current?.delivered += Int64(chunk.readableBytes)
        let delivered = self.current?.delivered ?? 0
        if chunk.readableBytes == 0 || delivered > current.entry.size {
            throw IngestError(
                .archiveFailed, path: path.string,
                "\(current.entry.path.string): the image holds \(delivered) bytes for a member of \(current.entry.size) bytes")
        }
        return chunk
    }

    /// The current member's content as an async sequence of chunks (valid until the next ``nextEntry()``).
    public func contents() -> ISOEntryContents {
        ISOEntryContents(reader: self, generation: generation)
    }

    /// Frees libarchive's reader; later calls return nil.
    public func close() async {
        guard let archive else { return }
        self.archive = nil
        current = nil
        let box = ArchiveBox(archive), library = self.library
        _ = try? await blocking { library.readFree(box.pointer) }
    }

    /// Reads the whole image: `body` gets every entry and, for files, its content (which it may read or ignore).
    @discardableResult
    public static func read(
        _ path: RawPath, configuration: ISOReaderConfiguration = .init(),
        _ body: (ISOEntry, ISOEntryContents) async throws -> Void
    ) async throws -> ISOReadSummary {
        let reader = try await open(path, configuration: configuration)
        var summary = ISOReadSummary()
        do {
            while let entry = try await reader.nextEntry() {
                try Task.checkCancellation()
                summary.count(entry)
                try await body(entry, reader.contents())
            }
        } catch {
            await reader.close()
            throw error
        }
        await reader.close()
        return summary
    }

    // MARK: - On the thread pool

    private func readHeader() throws -> ISOEntry? {
        guard let archive else { throw IngestError(.archiveFailed, path: path.string, "the reader is closed") }
        var entryPointer: OpaquePointer?
        var status: Int32
        var name: [UInt8]
        repeat {
            status = library.readNextHeader(archive, &entryPointer)
            if status == LibArchive.endOfArchive { return nil }
            guard status == LibArchive.ok || status == LibArchive.warning, let entry = entryPointer else {
                throw archiveError(library, archive, path: path, "cannot read the next entry")
            }
            name = cBytes(library.entryPathname(entry)) ?? cBytes(library.entryPathnameUTF8(entry)) ?? []
            while name.starts(with: [46, 47]) { name.removeFirst(2) }
            while name.last == 47 { name.removeLast() }
        } while name.isEmpty || name == [46]  // the root directory itself ("."): not a member
        guard let entry = entryPointer else { return nil }
        let warning = status == LibArchive.warning ? library.errorString(archive).map { String(cString: $0) } : nil
        let mode = library.entryMode(entry)
        let type: ISOEntryType
        if let target = cBytes(library.entryHardlink(entry)) {
            type = .hardlink(target: RawPath(bytes: stripDotSlash(target)))
        } else {
            switch mode & 0o170000 {
            case 0o100000: type = .file
            case 0o040000: type = .directory
            case 0o120000: type = .symlink(target: RawPath(bytes: cBytes(library.entrySymlink(entry)) ?? []))
            default: type = .other(mode: mode)
            }
        }
        let size: Int64 = if case .file = type { library.entrySize(entry) } else { 0 }
        let modified: Date? = library.entryModificationTimeIsSet(entry) != 0
            ? Date(timeIntervalSince1970: Double(library.entryModificationTime(entry)) + Double(library.entryModificationTimeNanoseconds(entry)) / 1e9)
            : nil
        return ISOEntry(path: RawPath(bytes: name), size: size, modificationTime: modified, type: type, mode: mode, warning: warning)
    }

    private func readData(max: Int) throws -> ByteBuffer {
        guard let archive else { throw IngestError(.archiveFailed, path: path.string, "the reader is closed") }
        var buffer = ByteBufferAllocator().buffer(capacity: max)
        var total = 0
        while total < max {
            let got = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: max - total) { pointer -> Int in
                let count = library.readData(archive, pointer.baseAddress, max - total)
                guard count >= 0 else { throw archiveError(library, archive, path: path, "cannot read the data of a member") }
                return count
            }
            if got == 0 { break }
            total += got
        }
        return buffer
    }
}

/// The content of one ISO member, read on demand; iterate it once, before the next `nextEntry()`.
public struct ISOEntryContents: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let reader: ISOImageReader
    let generation: Int

    public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
        let reader: ISOImageReader
        let generation: Int
        public mutating func next() async throws -> ByteBuffer? {
            try reader.checkGeneration(generation)
            return try await reader.readChunk()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: reader, generation: generation) }
}

extension ISOImageReader {
    fileprivate func checkGeneration(_ expected: Int) throws {
        guard expected == generation else {
            throw IngestError(.invalidArgument, path: path.string, "an entry's contents were read after moving to the next entry")
        }
    }
}

/// Moves libarchive's pointer across the thread-pool boundary.
private struct ArchiveBox: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

private func archiveError(_ library: LibArchive, _ archive: OpaquePointer, path: RawPath, _ what: String) -> IngestError {
    let detail = library.errorString(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    let code = library.errorNumber(archive)
    return IngestError(.archiveFailed, path: path.string, errno: code == 0 ? nil : code, "\(what): \(detail)")
}

private func cBytes(_ pointer: UnsafePointer<CChar>?) -> [UInt8]? {
    guard let pointer else { return nil }
    return Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
}

private func stripDotSlash(_ bytes: [UInt8]) -> [UInt8] {
    var bytes = bytes
    while bytes.starts(with: [46, 47]) { bytes.removeFirst(2) }
    return bytes
}

/// A C.UTF-8 locale, made once and never freed; nil when the system has none (names then come out as
/// libarchive manages in the process locale). A locale_t is immutable once made, so sharing it is safe.
private struct LocaleBox: @unchecked Sendable { let locale: locale_t? }
private let utf8Locale = LocaleBox(locale: newlocale(LC_CTYPE_MASK, "C.UTF-8", nil))

/// Runs `body` with this thread's LC_CTYPE set to UTF-8, restoring the thread's previous locale afterwards.
private func withUTF8CType<T>(_ body: () throws -> T) rethrows -> T {
    guard let locale = utf8Locale.locale else { return try body() }
    let previous = uselocale(locale)
    defer { uselocale(previous) }
    return try body()
}
