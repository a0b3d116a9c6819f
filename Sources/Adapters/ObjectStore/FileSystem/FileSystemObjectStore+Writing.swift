#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import NIOCore
import PipelineCore
import SystemIO

// MARK: Writing

extension FileSystemObjectStore {
    public func put(_ key: String, from source: ObjectSource, options: PutOptions,
                    journal: (any MultipartUploadJournal)?) async throws -> PutResult {
        _ = try mapping.validate(key, operation: "PUT")
        _ = try S3ObjectStore.writeHeaders(options, location: describe(key))
        let reader = try await SourceReader.open(source)
        defer { reader.close() }
        let mapping = self.mapping
        let durable = configuration.durable
        let temporary = mapping.temporaryDirectory + "/" + UUID().uuidString
        let fd: Int32
        do {
            fd = try await blocking { try POSIXFile.createExclusive(temporary) }
        } catch {
            throw failure(.localIO, "PUT", key, error)
        }
        var descriptorOpen = true
        var committed = false
        defer {
            if descriptorOpen { POSIXFile.closeFile(fd) }
            if !committed { try? POSIXFile.removeFile(temporary) }
        }

        var hasher = SHA256()
        let directWriter = configuration.directWriteThreshold.map { reader.length >= $0 } == true
            ? DirectFileWriter.make(fd: fd, blockSize: configuration.chunkSize) : nil
        if let directWriter {
            do {
                while reader.remaining > 0 {
                    hasher = try await directWriter.write(try await reader.readAvailable(upTo: configuration.chunkSize), hashing: hasher)
                }
                try await directWriter.finish(length: reader.length)
            } catch {
                await directWriter.drain()  // no write may still use the descriptor when it is closed
                throw failure(.localIO, "PUT", key, error)
            }
        } else {
            hasher = try await writeBuffered(from: reader, to: fd, hashing: hasher, key: key)
        }
        try await reader.verifyEnd()
        let sha256 = Array(hasher.finalize()).hexString
        let size = reader.length
        let storageClass = options.storageClass?.rawValue ?? StorageClass.standard.rawValue
        let sidecarBase = ObjectSidecar(inode: 0, size: size, sha256: sha256, storageClass: storageClass,
                                        contentType: options.contentType, metadata: Self.lowercased(options.metadata),
                                        restoredUntil: nil)
        descriptorOpen = false  // closed by the commit below, whatever happens
        do {
            try await blocking {
                var sidecar = sidecarBase
                do {
                    defer { POSIXFile.closeFile(fd) }
                    if durable {
                        try POSIXFile.sync(fd: fd)
                        // Clean now, and read again only by the archiver, maybe much later: let the pages go.
                        POSIXFile.dropCachedPages(fd: fd)
                    }
                    sidecar.inode = UInt64(try POSIXFile.status(fd: fd).st_ino)
                }
                try Self.commit(temporary: temporary, key: key, sidecar: sidecar, mapping: mapping,
                                syncName: durable && !options.deferNameSync)
            }
        } catch {
            throw failure(.localIO, "PUT", key, error)
        }
        committed = true
        try? await journal?.clear()
        return PutResult(key: key, size: size, sha256: sha256, etag: "\"\(sha256)\"", partCount: 0, partsUploaded: 0)
    }

    /// Writes the rest of `reader` to `fd` through the page cache, hashing it; blocking calls on the thread pool.
    private func writeBuffered(from reader: SourceReader, to fd: Int32, hashing hasher: SHA256, key: String) async throws -> SHA256 {
        var hasher = hasher
        var spare: ByteBuffer?  // one chunk buffer, reused
        while reader.remaining > 0 {
            let reuse = BufferHandoff(spare)
            spare = nil
            // A stream's chunks are written as they come (no copy into a buffer of our size).
            let chunk = BufferHandoff(try await reader.readAvailable(upTo: configuration.chunkSize, reusing: reuse))
            do {
                // Hash on the thread pool too: a 4 MiB chunk is milliseconds of CPU the cooperative pool should keep.
                (hasher, spare) = try await blocking { [hasher] in
                    var hasher = hasher
                    let bytes = chunk.take()!
                    hasher.update(buffer: bytes)
                    try POSIXFile.writeAll(fd: fd, bytes)
                    return (hasher, bytes)
                }
            } catch {
                throw failure(.localIO, "PUT", key, error)
            }
        }
        return hasher
    }

    private static func lowercased(_ metadata: [String: String]) -> [String: String] {
        Dictionary(metadata.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// Renames a finished temporary file into place, then its sidecar; blocking.
    private static func commit(temporary: String, key: String, sidecar: ObjectSidecar, mapping: FileKeyMapping,
                               syncName: Bool) throws {
        let objectPath = mapping.objectPath(key)
        let objectDirectory = POSIXFile.parentDirectory(of: objectPath)
        try makeDirectoriesInside(root: mapping.root, directory: objectDirectory, key: key)
        if let existing = try POSIXFile.status(path: objectPath), !POSIXFile.isRegularFile(existing) {
            throw ObjectStoreError(.conflict, operation: "PUT", location: "file://\(objectPath)",
                                   message: "a directory (holding other keys) or special file is in the way")
        }
        let sidecarData = try ObjectSidecar.encoder.encode(sidecar)
        let sidecarPath = mapping.sidecarPath(key)
        try POSIXFile.renameFile(temporary, objectPath)
        if syncName { try POSIXFile.syncDirectory(objectDirectory) }
        // The object is in place; a crash from here on leaves a sidecar that no longer matches its inode, which
        // readers ignore. So the sidecar is replaced atomically but not fsynced: the object's durability is what
        // matters, and two fewer fsyncs per object make small files several times faster to store.
        try AtomicFile.write(sidecarData, to: sidecarPath, durable: false)
    }

    /// `mkdir -p` below the root, refusing to pass through symbolic links (which could lead outside the root).
    private static func makeDirectoriesInside(root: String, directory: String, key: String) throws {
        var path = root
        let relative = directory.dropFirst(root.count)
        for component in relative.split(separator: "/") {
            path += "/" + component
            if let info = try POSIXFile.status(path: path) {
                guard POSIXFile.isDirectory(info) else {
                    throw ObjectStoreError(.conflict, operation: "PUT", location: "file://\(root)/\(key)",
                                           message: "'\(path.dropFirst(root.count + 1))' is an object or a link, "
                                               + "so it cannot also be a directory of keys")
                }
            } else {
                try POSIXFile.makeDirectories(path)
            }
        }
    }

    /// Syncs each directory holding one of `keys` once (objects written with ``PutOptions/deferNameSync``).
    public func syncNames(of keys: [String]) async throws {
        guard configuration.durable, !keys.isEmpty else { return }
        let mapping = self.mapping
        let directories = Set(keys.map { POSIXFile.parentDirectory(of: mapping.objectPath($0)) })
        do {
            try await blocking {
                for directory in directories.sorted() { try POSIXFile.syncDirectory(directory) }
            }
        } catch {
            throw failure(.localIO, "sync", keys[0], error)
        }
    }
}
