import Catalog
import Crypto
import Foundation

/// One file as a finished run saw it and the catalog row that held its content then.
struct UploadIndexEntry: Sendable, Hashable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    /// `st_mtim` and `st_ctim` in nanoseconds since 1970.
    var modified: Int64
    var changed: Int64
    /// The newest version of the path when the run finished (it held the content: not failed, unreadable or deleted).
    var rowID: Int64
}

/// What an index was made from: the run that wrote it and the catalog state it vouches for.
struct UploadIndexHeader: Sendable, Hashable {
    var sourceID: Int64
    var token: UploadIndexToken
    /// The source directory, byte-exact, and its file system (`statvfs`'s id, the type's name from mountinfo).
    var root: [UInt8]
    var fileSystemID: UInt64
    var fileSystemType: String
    /// Wall clock (CLOCK_REALTIME, nanoseconds) before the run's first `lstat`, and when the index was written.
    var runStarted: Int64
    var written: Int64
    /// The number of the snapshot the run finished (0: none). A later run that trusts every entry and sees no other
    /// path closes its own snapshot as this one's copy, if it is still the source's newest (``SnapshotCatalog``).
    var snapshotNumber: Int64 = 0
}

/// The uploader's local per-source index (git's index, restic's parent snapshot): for every file the last finished
/// run saw, its `lstat` identity and the catalog row it matched. A later run that finds a file exactly as recorded,
/// and the catalog exactly as it was, knows the answer of the catalog look-up without asking.
///
/// The file: `PBUPIDX\0`, format version (u32), the header (version 2 added the snapshot's number), the entries (path length u32, path, six 64-bit
/// fields), all little-endian, then the SHA-256 of everything before it. Anything that does not parse exactly
/// (short, long, another version, a checksum that does not match) is no index at all.
struct UploadIndex: Sendable {
    static let magic: [UInt8] = Array("PBUPIDX\0".utf8)
    static let formatVersion: UInt32 = 2

    var header: UploadIndexHeader
    var entries: [String: UploadIndexEntry]

    func encoded() -> [UInt8] {
        var out = Self.magic
        out.reserveCapacity(256 + entries.count * 100)
        out.append(Self.formatVersion)
        out.append(header.sourceID)
        out.append(bytes: Array(header.token.catalogIdentity.utf8))
        out.append(header.token.epoch)
        out.append(header.token.rows)
        out.append(header.token.maxRowID)
        out.append(bytes: header.root)
        out.append(header.fileSystemID)
        out.append(bytes: Array(header.fileSystemType.utf8))
        out.append(header.runStarted)
        out.append(header.written)
        out.append(header.snapshotNumber)
        out.append(UInt32(entries.count))
        for (path, entry) in entries {
            out.append(bytes: Array(path.utf8))
            out.append(entry.device)
            out.append(entry.inode)
            out.append(entry.size)
            out.append(entry.modified)
            out.append(entry.changed)
            out.append(entry.rowID)
        }
        out += Array(SHA256.hash(data: out))
        return out
    }

    /// The index in `bytes`, or nil when they are not exactly one index of this format.
    static func decode(_ bytes: [UInt8]) -> UploadIndex? {
        guard bytes.count >= magic.count + 4 + 32 else { return nil }
        let body = bytes[..<(bytes.count - 32)]
        guard Array(SHA256.hash(data: body)) == Array(bytes[(bytes.count - 32)...]) else { return nil }
        var reader = ByteReader(bytes: Array(body))
        guard reader.take(magic.count) == magic, reader.uint32() == formatVersion,
              let sourceID = reader.int64(), let identity = reader.lengthPrefixed(), let epoch = reader.int64(),
              let rows = reader.int64(), let maxRowID = reader.int64(), let root = reader.lengthPrefixed(),
              let fileSystemID = reader.uint64(), let fileSystemType = reader.lengthPrefixed(), let runStarted = reader.int64(),
              let written = reader.int64(), let snapshotNumber = reader.int64(), let count = reader.uint32()
        else { return nil }
        var entries: [String: UploadIndexEntry] = [:]
        entries.reserveCapacity(Int(min(count, 10_000_000)))
        for _ in 0..<count {
            guard let path = reader.lengthPrefixed(), let device = reader.uint64(), let inode = reader.uint64(),
                  let size = reader.int64(), let modified = reader.int64(), let changed = reader.int64(), let rowID = reader.int64()
            else { return nil }
            entries[String(decoding: path, as: UTF8.self)] = UploadIndexEntry(
                device: device, inode: inode, size: size, modified: modified, changed: changed, rowID: rowID)
        }
        guard reader.isAtEnd else { return nil }
        let header = UploadIndexHeader(
            sourceID: sourceID,
            token: UploadIndexToken(catalogIdentity: String(decoding: identity, as: UTF8.self), epoch: epoch, rows: rows, maxRowID: maxRowID),
            root: root, fileSystemID: fileSystemID, fileSystemType: String(decoding: fileSystemType, as: UTF8.self), runStarted: runStarted, written: written,
            snapshotNumber: snapshotNumber)
        return UploadIndex(header: header, entries: entries)
    }
}

/// What the index says about one file.
enum UploadIndexVerdict: Sendable, Equatable {
    /// Exactly as recorded and safely older than the run that recorded it, the catalog unchanged since: the row
    /// still holds the file's content. No look-up.
    case trusted(rowID: Int64)
    /// Same size and modification time as recorded, but its inode or change time differs, or it was modified too
    /// close to the recording run's start to tell two writes apart: something touched it, and a modification time
    /// put back (`touch -r`, a same-second rewrite, a replace by rename) would fool the catalog's size-and-time
    /// check. The catalog is asked, and if it calls the file unchanged the content is hashed and compared.
    case recheck
    /// Not in the index, another size, another device: the catalog's size-and-time check, as without an index.
    case unknown
}

/// When an index is believed.
struct UploadIndexPolicy: Sendable {
    /// How far apart two writes must be for their timestamps to differ on every file system the index trusts (FAT
    /// keeps 2 s, ext3 and HFS+ 1 s; finer ones follow the kernel's coarse clock, a few milliseconds). A file
    /// modified or changed less than this before the recording run started is re-checked: git's "racy" entries.
    static let granularityNanoseconds: Int64 = 2_000_000_000

    let index: UploadIndex
    /// False when the catalog changed since (another token) or the file system's times are not the local clock's:
    /// then nothing is trusted, and the index only points out files to re-check.
    let trustable: Bool

    func verdict(device: UInt64, inode: UInt64, size: Int64, modified: Int64, changed: Int64, path: String) -> UploadIndexVerdict {
        guard let entry = index.entries[path], entry.device == device, device != 0, entry.size == size else { return .unknown }
        let settled = index.header.runStarted - Self.granularityNanoseconds
        if trustable, entry.inode == inode, entry.modified == modified, entry.changed == changed, modified < settled, changed < settled {
            return .trusted(rowID: entry.rowID)
        }
        return .recheck
    }
}

extension Array where Element == UInt8 {
    fileprivate mutating func append(_ value: UInt32) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
    fileprivate mutating func append(_ value: UInt64) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
    fileprivate mutating func append(_ value: Int64) { append(UInt64(bitPattern: value)) }
    fileprivate mutating func append(bytes: [UInt8]) {
        append(UInt32(bytes.count))
        append(contentsOf: bytes)
    }
}

/// Reads fixed-width little-endian fields; every read is bounds-checked (nil past the end).
private struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    var isAtEnd: Bool { offset == bytes.count }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, bytes.count - offset >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    mutating func uint64() -> UInt64? {
        guard bytes.count - offset >= 8 else { return nil }
        defer { offset += 8 }
        return bytes.withUnsafeBytes { [offset] in UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
    }

    mutating func uint32() -> UInt32? {
        guard bytes.count - offset >= 4 else { return nil }
        defer { offset += 4 }
        return bytes.withUnsafeBytes { [offset] in UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    }

    mutating func int64() -> Int64? { uint64().map { Int64(bitPattern: $0) } }

    mutating func lengthPrefixed() -> [UInt8]? {
        guard let count = uint32() else { return nil }
        return take(Int(count))
    }
}
