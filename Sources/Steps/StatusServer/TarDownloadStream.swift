import ArchiveFormat
import Catalog
import Foundation
import NIOCore
import ObjectStore

/// A folder or a whole source as one POSIX tar stream, made as it is sent: each member's bytes are fetched from
/// staging only when their turn comes, so nothing of the whole is copied or held on the server. Its length is known
/// before the first byte (headers, data and padding add up), so the response has a Content-Length and a client
/// can tell a cut download from a whole one. Each member is checked against its SHA-256 as it passes; a mismatch
/// ends the stream early (see `VerifiedByteStream`). Files that cannot be included are named, with the reason, in
/// a last member `MISSING-FILES.txt`: nothing is left out silently.
struct TarDownloadStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    struct Member: Sendable {
        let name: String
        let download: FamilyDownload
        let read: FamilyDownload.Read
    }

    let members: [Member]
    /// The text of `MISSING-FILES.txt`, when some files are not included.
    let missing: [UInt8]?
    let missingName: String
    let missingTime = Int64(Date().timeIntervalSince1970)
    let staging: any ObjectStore

    init(root: String, entries: [FamilyRestoreEntry], staging: any ObjectStore) {
        var members: [Member] = []
        var missingLines: [String] = []
        var taken = Set<String>()
        for entry in entries {
            let directory = (entry.download.path as NSString).deletingLastPathComponent
            let name = Self.uniqueName(Self.safeName(root + "/" + (directory.isEmpty ? "" : directory + "/") + entry.download.name), taken: &taken)
            if let read = entry.download.read {
                members.append(Member(name: name, download: entry.download, read: read))
            } else {
                missingLines.append("\(entry.download.path): \(entry.missingReason ?? "not readable")")
            }
        }
        self.members = members
        self.missing = missingLines.isEmpty ? nil : Array(("These files are not in this download:\n" + missingLines.joined(separator: "\n") + "\n").utf8)
        self.missingName = Self.uniqueName(Self.safeName(root + "/MISSING-FILES.txt"), taken: &taken)
        self.staging = staging
    }

    /// A member name no unpacker can be led outside its directory by: no leading `/`, no `.`, `..` or empty
    /// components, no NUL.
    static func safeName(_ name: String) -> String {
        let parts = name.replacingOccurrences(of: "\u{0}", with: "_").split(separator: "/", omittingEmptySubsequences: true)
            .map { $0 == ".." ? "__" : String($0) }.filter { $0 != "." }
        return parts.joined(separator: "/")
    }

    /// Two names that one file system would take for the same (`Tape.avi.mp4` as a transcode's name beside a file of
    /// that name; `é` composed or not; case, on macOS and Windows) get ` (2)`, ` (3)` before the extension, so
    /// unpacking never overwrites one file with another.
    static func uniqueName(_ name: String, taken: inout Set<String>) -> String {
        func key(_ text: String) -> String { text.precomposedStringWithCanonicalMapping.lowercased() }
        if taken.insert(key(name)).inserted { return name }
        let ext = (name as NSString).pathExtension
        let stem = ext.isEmpty ? name : String(name.dropLast(ext.count + 1))
        var counter = 2
        while true {
            let candidate = stem + " (\(counter))" + (ext.isEmpty ? "" : "." + ext)
            if taken.insert(key(candidate)).inserted { return candidate }
            counter += 1
        }
    }

    static func modificationTime(_ member: Member) -> Int64 { Int64(member.download.modifiedAt?.timeIntervalSince1970 ?? 0) }

    /// The exact number of bytes the stream sends.
    var length: Int64 {
        var total: Int64 = 0
        for member in members {
            total += Int64(TarFormat.headers(name: member.name, size: member.download.size, modificationTime: Self.modificationTime(member)).count)
            total += member.download.size + Int64(TarFormat.padding(for: member.download.size).count)
        }
        if let missing {
            total += Int64(TarFormat.headers(name: missingName, size: Int64(missing.count), modificationTime: missingTime).count)
            total += Int64(missing.count + TarFormat.padding(for: Int64(missing.count)).count)
        }
        return total + Int64(TarFormat.trailer.count)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let stream: TarDownloadStream
        var index = 0
        var data: VerifiedByteStream.AsyncIterator?
        var pendingPadding: [UInt8]?
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            while true {
                if var current = data {
                    if let chunk = try await current.next() {
                        data = current
                        return chunk
                    }
                    data = nil
                    if let padding = pendingPadding, !padding.isEmpty {
                        pendingPadding = nil
                        return ByteBuffer(bytes: padding)
                    }
                    pendingPadding = nil
                    continue
                }
                if index < stream.members.count {
                    let member = stream.members[index]
                    index += 1
                    let header = TarFormat.headers(
                        name: member.name, size: member.download.size, modificationTime: TarDownloadStream.modificationTime(member))
                    data = try await FamilyDownloadRoute.bytes(of: member.download, read: member.read, from: stream.staging).makeAsyncIterator()
                    pendingPadding = TarFormat.padding(for: member.download.size)
                    return ByteBuffer(bytes: header)
                }
                guard !finished else { return nil }
                finished = true
                var tail: [UInt8] = []
                if let missing = stream.missing {
                    tail += TarFormat.headers(name: stream.missingName, size: Int64(missing.count), modificationTime: stream.missingTime)
                    tail += missing + TarFormat.padding(for: Int64(missing.count))
                }
                return ByteBuffer(bytes: tail + TarFormat.trailer)
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: self) }
}
