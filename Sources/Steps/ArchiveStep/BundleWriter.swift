import ArchiveFormat
import Catalog
import Crypto
import Foundation
import NIOCore
import ObjectStore
import PipelineCore
import SystemIO

/// A finished bundle file, ready to upload.
struct FinishedBundle {
    let path: String
    let size: Int64
    let sha256: String
    let compression: String
    let tarBytes: Int64
    let manifest: BundleManifest
}

/// Assembles a tar of small files in a local file while each member streams in from staging, checking every
/// member's size and SHA-256 against the catalog on the way. Memory stays at one write buffer.
final class BundleWriter {
    let tarPath: String
    private let writer: BufferedFileWriter
    private(set) var members: [BundleManifestMember] = []
    private var encryptedSources: [String: String] = [:]
    private(set) var rawBytes: Int64 = 0
    private var compressedBytes: Int64 = 0
    private var names: Set<String> = []
    private var hasher = SHA256()
    private var hashIsValid = true
    private let createdAt = Date()

    init(directory: String) throws {
        tarPath = directory + "/bundle-\(UUID().uuidString.lowercased()).tar"
        writer = try BufferedFileWriter(creating: tarPath)
    }

    var isEmpty: Bool { members.isEmpty }

    /// Appends one file. On a size or hash mismatch the member is cut out again and the error thrown.
    func append(_ item: ArchiveItem, body: ObjectByteStream) async throws {
        let start = writer.offset
        let name = memberName(for: item)
        // An encrypted file's time stays out of the archive with its name (its sealed placement has both).
        let mtime = item.sealed == nil ? Int64(item.modifiedAt?.timeIntervalSince1970 ?? 0) : 0
        try await write(TarFormat.headers(name: name, size: item.contentSize, modificationTime: mtime))
        let dataOffset = writer.offset
        var memberHasher = SHA256()
        var size: Int64 = 0
        var firstBytes: [UInt8] = []
        do {
            for try await chunk in body {
                if firstBytes.count < 16 { firstBytes += chunk.readableBytesView.prefix(16 - firstBytes.count) }
                chunk.withUnsafeReadableBytes { memberHasher.update(bufferPointer: $0) }
                size += Int64(chunk.readableBytes)
                guard size <= item.contentSize else { break }
                try await write(chunk)
            }
        } catch {
            try await cut(to: start)
            throw error
        }
        let digest = hex(memberHasher.finalize())
        guard size == item.contentSize, digest == item.contentHash else {
            try await cut(to: start)
            throw ArchiveError.contentMismatch(
                fileID: item.job.fileID, key: item.stagingKey ?? "-", expected: item.contentHash,
                actual: size == item.contentSize ? digest : "of \(size) bytes instead of \(item.contentSize)")
        }
        try await write(TarFormat.padding(for: size))
        names.insert(name)
        rawBytes += size
        // Ciphertext does not compress.
        if item.sealed != nil || Compressibility.isCompressed(name: item.name, firstBytes: firstBytes) { compressedBytes += size }
        if let sealed = item.sealed {
            if let record = item.sourceEncryption { encryptedSources[String(item.sourceID)] = record }
            members.append(BundleManifestMember(
                fileID: item.job.fileID, sourceLabel: "", path: "", version: item.version, kind: item.kind.rawValue, member: name,
                offset: dataOffset, size: size, sha256: digest, originalSHA256: item.originalHash, modifiedAt: nil, sealed: sealed))
        } else {
            members.append(BundleManifestMember(
                fileID: item.job.fileID, sourceLabel: item.sourceLabel, path: item.path, version: item.version,
                kind: item.kind.rawValue, member: name, offset: dataOffset, size: size, sha256: digest,
                originalSHA256: item.originalHash, modifiedAt: item.modifiedAt))
        }
    }

    /// Writes the manifest and the end of the archive, then compresses when it helps: only when at least a
    /// quarter of the bytes are not compressed formats already, and only if zstd saves at least 10%.
    func finish(compressionLevel: Int32) async throws -> FinishedBundle {
        let manifest = BundleManifest(createdAt: createdAt, members: members, encryptedSources: encryptedSources.isEmpty ? nil : encryptedSources)
        let manifestBytes = try manifest.encoded()
        try await write(TarFormat.headers(name: BundleManifest.memberName, size: Int64(manifestBytes.count), modificationTime: Int64(createdAt.timeIntervalSince1970)))
        try await write(manifestBytes)
        try await write(TarFormat.padding(for: Int64(manifestBytes.count)))
        try await write(TarFormat.trailer)
        try await writer.finish()
        let tarBytes = writer.offset
        let tarPath = self.tarPath
        let tarHash = hashIsValid ? hex(hasher.finalize()) : try await blocking { try Self.hashFile(tarPath) }

        var finished = FinishedBundle(path: tarPath, size: tarBytes, sha256: tarHash, compression: "none", tarBytes: tarBytes, manifest: manifest)
        if rawBytes > 0 && Double(rawBytes - compressedBytes) >= 0.25 * Double(rawBytes) {
            let zstdPath = tarPath + ".zst"
            let (size, hash) = try await blocking { try ZstdFile.compress(tarPath, to: zstdPath, level: compressionLevel) }
            if Double(size) <= 0.9 * Double(tarBytes) {
                finished = FinishedBundle(path: zstdPath, size: size, sha256: hash, compression: "zstd", tarBytes: tarBytes, manifest: manifest)
            } else {
                try? FileManager.default.removeItem(atPath: zstdPath)
            }
        }
        return finished
    }

    /// Removes the local files.
    func discard() {
        try? FileManager.default.removeItem(atPath: tarPath)
        try? FileManager.default.removeItem(atPath: tarPath + ".zst")
    }

    /// `label/path`, made unique inside the bundle (another version of the same path gets `~v2` and so on).
    /// An encrypted file's is `encrypted/<file id>.age`: no name or path of it enters the archive.
    private func memberName(for item: ArchiveItem) -> String {
        if item.sealed != nil { return "encrypted/\(item.job.fileID).age" }
        let label = item.sourceLabel.replacingOccurrences(of: "/", with: "_")
        var path = item.path
        while path.hasPrefix("/") { path.removeFirst() }
        var name = "\(label)/\(path)"
        if names.contains(name) { name += "~v\(item.version)" }
        var counter = 2
        let base = name
        while names.contains(name) {
            name = "\(base)~\(counter)"
            counter += 1
        }
        return name
    }

    private func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        hasher.update(data: bytes)
        try await writer.write(bytes)
    }

    private func write(_ buffer: ByteBuffer) async throws {
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        try await writer.write(buffer)
    }

    private func cut(to offset: Int64) async throws {
        try await writer.truncate(to: offset)
        hashIsValid = false
    }

    static func hashFile(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw FileIOError(operation: "open", path: path, errno: ENOENT) }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty { hasher.update(data: data) }
        return hex(hasher.finalize())
    }
}
