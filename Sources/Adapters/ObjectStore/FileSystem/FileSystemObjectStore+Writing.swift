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
        let syncName = durable && !options.deferNameSync
        let temporary = mapping.temporaryDirectory + "/" + UUID().uuidString
        let size = reader.length
        let storageClass = options.storageClass?.rawValue ?? StorageClass.standard.rawValue
        let sidecarBase = ObjectSidecar(inode: 0, size: size, sha256: "", storageClass: storageClass,
                                        contentType: options.contentType, metadata: Self.lowercased(options.metadata),
                                        restoredUntil: nil)
        let direct = configuration.directWriteThreshold.map { size >= $0 } == true
        // The first piece decides the way: an object that came whole (a stream's one chunk: every file of a disc that
        // fits one read chunk) is created, written, hashed, fsynced and renamed in one call on the thread pool
        // instead of four, which is most of what a small file costs besides its system calls.
        let first = reader.remaining > 0 ? try await reader.readAvailable(upTo: configuration.chunkSize) : ByteBuffer()
        if reader.remaining == 0, !direct {
            try await reader.verifyEnd()
            let sha256: String
            do {
                sha256 = try await blocking {
                    let fd = try POSIXFile.createExclusive(temporary)
                    var descriptorOpen = true
                    do {
                        var hasher = SHA256()
                        if first.readableBytes > 0 {
                            hasher.update(buffer: first)
                            try POSIXFile.writeAll(fd: fd, first)
                        }
                        var sidecar = sidecarBase
                        sidecar.sha256 = Array(hasher.finalize()).hexString
                        descriptorOpen = false
                        try Self.finish(fd: fd, temporary: temporary, key: key, sidecar: sidecar, mapping: mapping, durable: durable,
                                        syncName: syncName)
                        return sidecar.sha256
                    } catch {
                        if descriptorOpen { POSIXFile.closeFile(fd) }
                        try? POSIXFile.removeFile(temporary)
                        throw error
                    }
                }
            } catch {
                throw failure(.localIO, "PUT", key, error)
            }
            try? await journal?.clear()
            return PutResult(key: key, size: size, sha256: sha256, etag: "\"\(sha256)\"", partCount: 0, partsUploaded: 0)
        }

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
        let directWriter = direct ? DirectFileWriter.make(fd: fd, blockSize: configuration.chunkSize) : nil
        if let directWriter {
            do {
                hasher = try await directWriter.write(first, hashing: hasher)
                while reader.remaining > 0 {
                    hasher = try await directWriter.write(try await reader.readAvailable(upTo: configuration.chunkSize), hashing: hasher)
                }
                try await directWriter.finish(length: reader.length)
            } catch {
                await directWriter.drain()  // no write may still use the descriptor when it is closed
                throw failure(.localIO, "PUT", key, error)
            }
        } else {
            hasher = try await writeBuffered(first: first, from: reader, to: fd, hashing: hasher, key: key)
        }
        try await reader.verifyEnd()
        var sidecar = sidecarBase
        sidecar.sha256 = Array(hasher.finalize()).hexString
        descriptorOpen = false  // closed by `finish` below, whatever happens
        do {
            try await blocking { [sidecar] in
                try Self.finish(fd: fd, temporary: temporary, key: key, sidecar: sidecar, mapping: mapping, durable: durable, syncName: syncName)
            }
        } catch {
            throw failure(.localIO, "PUT", key, error)
        }
        committed = true
        try? await journal?.clear()
        return PutResult(key: key, size: size, sha256: sidecar.sha256, etag: "\"\(sidecar.sha256)\"", partCount: 0, partsUploaded: 0)
    }

    /// Ends a write whose bytes are all in `fd`, then closes it whatever happens: a plain object's checksum onto its
    /// inode, fsync, the pages let go, then ``commit(temporary:key:sidecar:mapping:syncName:)``. Blocking.
    private static func finish(fd: Int32, temporary: String, key: String, sidecar: ObjectSidecar, mapping: FileKeyMapping,
                               durable: Bool, syncName: Bool) throws {
        var sidecar: ObjectSidecar? = sidecar
        do {
            defer { POSIXFile.closeFile(fd) }
            // Set before the fsync, so the attribute is as durable as the bytes; no sidecar file is needed then.
            if let value = sidecar?.attributeValue, POSIXFile.setAttribute(fd: fd, name: ObjectSidecar.attributeName, value: value) {
                sidecar = nil
            }
            if durable {
                try POSIXFile.sync(fd: fd)
                // Clean now, and read again only by the archiver, maybe much later: let the pages go.
                POSIXFile.dropCachedPages(fd: fd)
            }
            if sidecar != nil { sidecar?.inode = UInt64(try POSIXFile.status(fd: fd).st_ino) }
        }
        try commit(temporary: temporary, key: key, sidecar: sidecar, mapping: mapping, syncName: syncName)
    }

    /// Writes `first` and the rest of `reader` to `fd` through the page cache, hashing them; blocking calls on the
    /// thread pool.
    private func writeBuffered(first: ByteBuffer, from reader: SourceReader, to fd: Int32, hashing hasher: SHA256, key: String) async throws -> SHA256 {
        var hasher = hasher
        var spare: ByteBuffer?  // one chunk buffer, reused
        var pending: ByteBuffer? = first.readableBytes > 0 ? first : nil
        while pending != nil || reader.remaining > 0 {
            let reuse = BufferHandoff(spare)
            spare = nil
            // A stream's chunks are written as they come (no copy into a buffer of our size).
            let chunk: BufferHandoff
            if let piece = pending {
                chunk = BufferHandoff(piece)
                pending = nil
            } else {
                chunk = BufferHandoff(try await reader.readAvailable(upTo: configuration.chunkSize, reusing: reuse))
            }
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

    /// Renames a finished temporary file into place, then its sidecar (nil: none, the attribute holds it); blocking.
    private static func commit(temporary: String, key: String, sidecar: ObjectSidecar?, mapping: FileKeyMapping,
                               syncName: Bool) throws {
        let objectPath = mapping.objectPath(key)
        let objectDirectory = POSIXFile.parentDirectory(of: objectPath)
        let sidecarData = try sidecar.map { try ObjectSidecar.encoder.encode($0) }
        // A delete elsewhere in the store may prune the directory between the mkdir and the rename: both again.
        try POSIXFile.retryingVanishedDirectories {
            try makeDirectoriesInside(root: mapping.root, directory: objectDirectory, key: key)
            if let existing = try POSIXFile.status(path: objectPath), !POSIXFile.isRegularFile(existing) {
                throw ObjectStoreError(.conflict, operation: "PUT", location: "file://\(objectPath)",
                                       message: "a directory (holding other keys) or special file is in the way")
            }
            try POSIXFile.renameFile(temporary, objectPath)
        }
        if syncName { try POSIXFile.syncDirectory(objectDirectory) }
        // The object is in place; a crash from here on leaves a sidecar that no longer matches its inode, which
        // readers ignore. So the sidecar is replaced atomically but not fsynced: the object's durability is what
        // matters, and two fewer fsyncs per object make small files several times faster to store.
        if let sidecarData { try AtomicFile.write(sidecarData, to: mapping.sidecarPath(key), durable: false) }
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
