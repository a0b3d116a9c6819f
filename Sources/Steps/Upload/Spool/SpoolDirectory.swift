#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import PipelineCore
import SystemIO

public typealias SpoolError = CodedError<SpoolErrorCode>

public enum SpoolErrorCode: String, Sendable, Hashable {
    /// The directory is not a spool (no identity file) or cannot be made one.
    case notASpool
    /// A spooled file is missing or its bytes are not what the catalog recorded.
    case spoolFileDamaged
    /// Another sender took the file over (this one's lease ran out): it was not marked sent by this one.
    case leaseLost
}

/// A spool directory (`--spool DIR`, `BACKUP_SPOOL_DIR`): a local disk or NAS directory where `uploader upload`
/// puts the bytes it would have staged, for `uploader send` to move to staging later.
///
/// Its identity file (`.personal-backup-spool`, a UUID) tells the catalog which spool a row waits in, so that
/// several machines' spools (and a NAS directory mounted at different paths) are told apart. The files are kept
/// by a `file://` object store rooted at the directory, at the keys they get in staging.
public struct SpoolDirectory: Sendable, Hashable {
    public static let identityFileName = ".personal-backup-spool"
    static let identityHeader = "personal-backup spool v1"

    public let path: String
    public let id: UUID

    /// Opens the spool at `path`; with `create`, makes the directory and its identity if they are missing (two
    /// machines creating one at once agree on one identity: it is linked into place, never overwritten).
    public static func open(_ path: String, create: Bool) async throws -> SpoolDirectory {
        let root = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        let identity = root + "/" + identityFileName
        return try await blocking {
            if let id = try readIdentity(identity) { return SpoolDirectory(path: root, id: id) }
            guard create else {
                throw SpoolError(.notASpool, "\(root) is not a spool (no \(identityFileName)); `uploader upload --spool \(root)` makes one")
            }
            do {
                try POSIXFile.makeDirectories(root)
                let temporary = identity + ".\(UUID().uuidString).tmp"
                let fd = try POSIXFile.createExclusive(temporary)
                defer { try? POSIXFile.removeFile(temporary) }
                do {
                    defer { POSIXFile.closeFile(fd) }
                    try POSIXFile.writeAll(fd: fd, ByteBuffer(string: "\(identityHeader)\nid=\(UUID().uuidString.lowercased())\n"), path: temporary)
                    try POSIXFile.sync(fd: fd)
                }
                // link(2) fails when the name exists: the first of two concurrent creators wins, the other reads it.
                if link(temporary, identity) != 0, errno != EEXIST {
                    throw FileIOError(operation: "link", path: identity, errno: errno)
                }
                try POSIXFile.syncDirectory(root)
            } catch let error as FileIOError {
                throw SpoolError(.notASpool, "cannot make \(root) a spool: \(error)")
            }
            guard let id = try readIdentity(identity) else {
                throw SpoolError(.notASpool, "\(identity) vanished while the spool was being made")
            }
            return SpoolDirectory(path: root, id: id)
        }
    }

    static func readIdentity(_ path: String) throws -> UUID? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw SpoolError(.notASpool, "cannot read \(path)")
        }
        let lines = text.split(separator: "\n")
        guard lines.first == Substring(identityHeader),
              let line = lines.first(where: { $0.hasPrefix("id=") }), let id = UUID(uuidString: String(line.dropFirst(3))) else {
            throw SpoolError(.notASpool, "\(path) is not a spool identity file")
        }
        return id
    }

    /// Bytes of the files waiting in the spool (the data files under `sources/`; files being written are counted by
    /// whoever writes them). Blocking: call through ``blocking(_:)``.
    static func usedBytes(_ root: String) -> Int64 {
        var total: Int64 = 0
        func walk(_ directory: String) {
            guard let entries = try? POSIXFile.directoryEntries(directory) else { return }
            for entry in entries {
                let path = directory + "/" + entry.name
                if entry.isDirectory {
                    if path == root + "/.objectstore/tmp" { continue }
                    walk(path)
                } else if let info = try? POSIXFile.status(path: path), POSIXFile.isRegularFile(info) {
                    total += Int64(info.st_size)
                }
            }
        }
        // The spooled files only: the identity file and the store's sidecars would make a spool holding nothing look
        // not empty, and a file larger than the limit, let in only into an empty spool, would wait for ever.
        walk(root + "/sources")
        return total
    }
}
