import Catalog
import Foundation
import SystemIO

/// Where the indexes live (`<data dir>/upload-index`), one file per source and catalog:
/// `source-<source id>-<catalog identity>.index`. Written whole, atomically (temporary file, fsync, rename, fsync of
/// the directory); a file that cannot be read is no index.
struct UploadIndexStore: Sendable {
    let directory: String

    /// Nil when the identity is not a plain UUID text (it becomes part of a file name).
    func path(sourceID: Int64, catalogIdentity: String) -> String? {
        guard !catalogIdentity.isEmpty, catalogIdentity.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { return nil }
        return "\(directory)/source-\(sourceID)-\(catalogIdentity).index"
    }

    /// The file's bytes, or nil when it is missing or cannot be read.
    static func read(_ path: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return Array(data)
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        let directory = POSIXFile.parentDirectory(of: path)
        try POSIXFile.makeDirectories(directory)
        let temporary = path + ".tmp-\(getpid())"
        try? POSIXFile.removeFile(temporary)
        let fd = try POSIXFile.createExclusive(temporary, mode: 0o600)
        do {
            try bytes.withUnsafeBytes { try POSIXFile.writeAll(fd: fd, $0, path: temporary) }
            try POSIXFile.sync(fd: fd)
            POSIXFile.closeFile(fd)
        } catch {
            POSIXFile.closeFile(fd)
            try? POSIXFile.removeFile(temporary)
            throw error
        }
        try POSIXFile.renameFile(temporary, path)
        try POSIXFile.syncDirectory(directory)
    }

    static func remove(_ path: String) {
        try? POSIXFile.removeFile(path)
    }

    /// CLOCK_REALTIME in nanoseconds: the clock file times come from.
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// The file system holding `path`: `statvfs`'s id, and its type as `/proc/self/mountinfo` names it for the
    /// path's device ("ext4", "nfs4", "fuse.sshfs"; "unknown" when it cannot be told). Nil when it cannot be asked.
    static func fileSystem(of path: String) -> (id: UInt64, type: String)? {
        var info = statvfs()
        guard statvfs(path, &info) == 0, let status = try? POSIXFile.status(path: path) else { return nil }
        let device = UInt64(status.st_dev)
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
        let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
        var type = "unknown"
        if let mounts = FileManager.default.contents(atPath: "/proc/self/mountinfo") {
            let wanted = "\(major):\(minor)"
            for line in String(decoding: mounts, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[2] == wanted, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
                type = String(fields[dash + 1])
                break
            }
        }
        return (UInt64(info.f_fsid), type)
    }

    /// File systems whose timestamps this machine's kernel sets from its own clock, so that the racy rule (a file
    /// older than the recording run's start) means something. Network and FUSE file systems take their times from
    /// another clock (the server's, or whatever the daemon says): the index never trusts itself there.
    static let localFileSystemTypes: Set<String> = [
        "ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "zfs", "bcachefs", "overlay", "ntfs3", "vfat", "msdos", "exfat",
        "hfsplus", "iso9660", "udf", "reiserfs", "jfs", "nilfs2", "squashfs",
    ]
}

/// Rows the run's catalog writes returned: by path (for the index) and all of them (to tell the run's own new rows
/// from anybody else's at the end).
final class RecordedRows: Sendable {
    private let state = LockedBox<(byPath: [String: Int64], ids: Set<Int64>)>(([:], []))

    func note(_ records: [IngestRecord], _ outcomes: [CatalogOutcome]) {
        state.withLock { state in
            for (record, outcome) in zip(records, outcomes) {
                let id: Int64
                switch outcome {
                case .staged(let fileID, _), .duplicate(let fileID, _, _), .unchanged(let fileID): id = fileID
                case .needsContent: continue
                }
                state.byPath[record.file.path] = id
                state.ids.insert(id)
            }
        }
    }

    /// A row written outside the batches (an unreadable file's).
    func note(rowID: Int64) {
        _ = state.withLock { $0.ids.insert(rowID) }
    }

    func rowID(for path: String) -> Int64? {
        state.withLock { $0.byPath[path] }
    }

    func count(above rowID: Int64) -> Int64 {
        state.withLock { state in Int64(state.ids.count { $0 > rowID }) }
    }
}
