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
import SigV4
import SystemIO

/// An ``ObjectStore`` in a local directory (`file:///path`), for single-machine use and tests.
///
/// Writes go to a temporary file under `.objectstore/tmp`, are fsynced, renamed into place and the directory is
/// fsynced: a reader sees the old object or the complete new one, never a partial one, even after a crash.
/// It behaves like S3 where callers can tell: storage classes are recorded, objects in GLACIER or DEEP_ARCHIVE
/// cannot be read until a restore is requested (which completes at once), keys sort in UTF-8 byte order, and
/// deleting a missing key succeeds. Presigned URLs are `file://` URLs of the object (they do not expire: a local
/// path grants whatever the file permissions grant). There are no multipart uploads: every write streams through
/// one temporary file, so `journal` is not needed and is cleared.
public struct FileSystemObjectStore: ObjectStore {
    public struct Configuration: Sendable, Hashable {
        /// Refuse to read GLACIER and DEEP_ARCHIVE objects until `requestRestore`, as S3 does.
        public var archivedObjectsNeedRestore: Bool
        /// Bytes read and written per system call.
        public var chunkSize: Int
        /// fsync files and directories (turn off only for throwaway test data).
        public var durable: Bool
        /// Objects at least this large are written with `O_DIRECT` where the file system allows it (see
        /// ``DirectFileWriter``); nil writes everything through the page cache.
        public var directWriteThreshold: Int64?
        /// How long a requested restore stays in progress before the object is readable (S3 takes hours for Deep
        /// Archive; zero finishes at once). Tests set it through `BACKUP_TEST_FILE_RESTORE_SECONDS` (TestHooks).
        public var restoreDelay: Duration

        public init(archivedObjectsNeedRestore: Bool = true, chunkSize: Int = 4 << 20, durable: Bool = true,
                    directWriteThreshold: Int64? = 8 << 20, restoreDelay: Duration = .zero) {
            self.archivedObjectsNeedRestore = archivedObjectsNeedRestore
            self.chunkSize = chunkSize
            self.durable = durable
            self.directWriteThreshold = directWriteThreshold
            self.restoreDelay = restoreDelay
        }
    }

    let mapping: FileKeyMapping
    public let configuration: Configuration

    public var location: StorageURL { .file(path: mapping.root) }
    public var root: String { mapping.root }

    /// Opens (and creates, if needed) the store's directory.
    public init(root: String, configuration: Configuration = Configuration()) async throws {
        var root = root
        while root.count > 1, root.hasSuffix("/") { root.removeLast() }
        guard root.hasPrefix("/") else {
            throw ObjectStoreError(.configuration, operation: "open store", location: "file://\(root)",
                                   message: "the root must be an absolute path")
        }
        self.mapping = FileKeyMapping(root: root)
        self.configuration = configuration
        let mapping = self.mapping
        do {
            try await blocking {
                try POSIXFile.makeDirectories(mapping.temporaryDirectory)
                try POSIXFile.makeDirectories(mapping.metadataDirectory)
            }
        } catch {
            throw ObjectStoreError(.localIO, operation: "open store", location: "file://\(root)", message: "\(error)")
        }
    }

    private func failure(_ kind: ObjectStoreError.Kind, _ operation: String, _ key: String, _ error: any Error)
        -> ObjectStoreError
    {
        if let error = error as? ObjectStoreError { return error }
        return ObjectStoreError(kind, operation: operation, location: describe(key), message: "\(error)")
    }

    // MARK: put

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

    // MARK: read

    /// The sidecar of `key` if it still describes the file with this inode and size.
    private static func sidecar(for key: String, info: stat, mapping: FileKeyMapping) -> ObjectSidecar? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: mapping.sidecarPath(key))),
              let sidecar = try? ObjectSidecar.decoder.decode(ObjectSidecar.self, from: data),
              sidecar.inode == UInt64(info.st_ino), sidecar.size == Int64(info.st_size) else { return nil }
        return sidecar
    }

    private static func objectInfo(key: String, info: stat, sidecar: ObjectSidecar?, now: Date) -> ObjectInfo {
        let storageClassName = sidecar?.storageClass ?? StorageClass.standard.rawValue
        let archived = StorageClass(rawValue: storageClassName)?.needsRestoreBeforeRead ?? false
        var restore = RestoreState.notArchived
        if archived {
            if let until = sidecar?.restoredUntil, until > now {
                restore = (sidecar?.restoreReadyAt).map { $0 > now } == true ? .inProgress : .restored(until: until)
            } else {
                restore = .archived
            }
        }
        #if canImport(Darwin)
        let modified = Date(timeIntervalSince1970: TimeInterval(info.st_mtimespec.tv_sec))
        #else
        let modified = Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec))
        #endif
        return ObjectInfo(
            key: key, size: Int64(info.st_size), etag: sidecar.map { "\"\($0.sha256)\"" }, lastModified: modified,
            storageClassName: storageClassName, restore: restore, contentType: sidecar?.contentType,
            metadata: sidecar?.metadata ?? [:],
            checksumSHA256: sidecar.flatMap { hexBytes($0.sha256) }.map { Data($0).base64EncodedString() })
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        _ = try mapping.validate(key, operation: "HEAD")
        let mapping = self.mapping
        do {
            return try await blocking { () throws -> ObjectInfo? in
                guard let info = try POSIXFile.status(path: mapping.objectPath(key)), POSIXFile.isRegularFile(info)
                else { return nil }
                return Self.objectInfo(key: key, info: info, sidecar: Self.sidecar(for: key, info: info, mapping: mapping),
                                       now: Date())
            }
        } catch {
            throw failure(.localIO, "HEAD", key, error)
        }
    }

    public func get(_ key: String, range: ByteRange?) async throws -> ObjectDownload {
        _ = try mapping.validate(key, operation: "GET")
        let mapping = self.mapping
        let location = describe(key)
        let needRestore = configuration.archivedObjectsNeedRestore
        let (fd, info) = try await blocking { () throws -> (Int32, ObjectInfo) in
            let fd = open(mapping.objectPath(key), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else {
                let code = errno
                if code == ENOENT || code == ENOTDIR || code == ELOOP || code == EISDIR {
                    throw ObjectStoreError(.notFound, operation: "GET", location: location, message: "no such key")
                }
                throw ObjectStoreError(.localIO, operation: "GET", location: location,
                                       message: String(cString: strerror(code)))
            }
            do {
                let status = try POSIXFile.status(fd: fd)
                guard POSIXFile.isRegularFile(status) else {
                    throw ObjectStoreError(.notFound, operation: "GET", location: location, message: "no such key")
                }
                let info = Self.objectInfo(key: key, info: status,
                                           sidecar: Self.sidecar(for: key, info: status, mapping: mapping), now: Date())
                if needRestore, !info.restore.isReadable {
                    throw ObjectStoreError(
                        .invalidObjectState, operation: "GET", location: location,
                        message: "the object is in \(info.storageClassName) and has no finished restore",
                        serverCode: "InvalidObjectState")
                }
                return (fd, info)
            } catch {
                POSIXFile.closeFile(fd)
                throw error
            }
        }
        let first = range?.first ?? 0
        let last = min(range?.last ?? (info.size - 1), info.size - 1)
        if range != nil, first >= info.size, !(first == 0 && info.size == 0) {
            POSIXFile.closeFile(fd)
            throw ObjectStoreError(.invalidArgument, operation: "GET", location: location,
                                   message: "the range starts after the object's end (\(info.size) bytes)",
                                   serverCode: "InvalidRange", httpStatus: 416)
        }
        let length = max(0, last - first + 1)
        let iterator = FileChunkIterator(fd: fd, offset: first, remaining: length, chunkSize: configuration.chunkSize)
        let box = IteratorBox(iterator)
        return ObjectDownload(info: info, contentLength: length, body: ObjectByteStream { box.take() })
    }

    // MARK: list / delete

    public func list(prefix: String, continuationToken: String?, maxKeys: Int) async throws -> ObjectListPage {
        let mapping = self.mapping
        let keys: [String]
        do {
            keys = try await blocking { try Self.keys(under: prefix, mapping: mapping) }
        } catch {
            throw failure(.localIO, "list", prefix, error)
        }
        var page: [String] = []
        let limit = max(1, min(maxKeys, 1000))
        for key in keys where continuationToken.map({ $0.utf8.lexicographicallyPrecedes(key.utf8) }) ?? true {
            page.append(key)
            if page.count == limit { break }
        }
        let pageKeys = page
        let summaries = try await blocking { () -> [ObjectSummary] in
            pageKeys.compactMap { key in
                guard let info = try? POSIXFile.status(path: mapping.objectPath(key)) else { return nil }
                let object = Self.objectInfo(key: key, info: info, sidecar: Self.sidecar(for: key, info: info,
                                                                                        mapping: mapping), now: Date())
                return ObjectSummary(key: key, size: object.size, etag: object.etag, lastModified: object.lastModified,
                                     storageClassName: object.storageClassName)
            }
        }
        let more = page.count == limit && keys.last != page.last
        return ObjectListPage(objects: summaries, nextContinuationToken: more ? page.last : nil)
    }

    /// Every key starting with `prefix`, sorted by UTF-8 bytes as S3 sorts them. Blocking.
    private static func keys(under prefix: String, mapping: FileKeyMapping) throws -> [String] {
        // Only the directory the prefix points into needs walking.
        let directoryPart = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) : ""
        let start = directoryPart.isEmpty ? mapping.root : mapping.root + "/" + directoryPart
        guard let info = try POSIXFile.status(path: start), POSIXFile.isDirectory(info) else { return [] }
        var keys: [String] = []
        var pending: [(path: String, key: String)] = [(start, directoryPart)]
        while let next = pending.popLast() {
            let (path, keyPrefix) = (next.path, next.key)
            for entry in try POSIXFile.directoryEntries(path) {
                let key = keyPrefix.isEmpty ? entry.name : keyPrefix + "/" + entry.name
                if keyPrefix.isEmpty, entry.name == FileKeyMapping.internalDirectoryName { continue }
                if entry.isDirectory {
                    // Descend only where keys with the prefix can be.
                    if key.hasPrefix(prefix) || prefix.hasPrefix(key + "/") { pending.append((path + "/" + entry.name, key)) }
                } else if key.hasPrefix(prefix) {
                    keys.append(key)
                }
            }
        }
        keys.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return keys
    }

    public func delete(_ key: String) async throws {
        _ = try mapping.validate(key, operation: "DELETE")
        let mapping = self.mapping
        let durable = configuration.durable
        do {
            try await blocking {
                let objectPath = mapping.objectPath(key)
                if let info = try POSIXFile.status(path: objectPath), !POSIXFile.isRegularFile(info) { return }
                try POSIXFile.removeFile(objectPath)
                try POSIXFile.removeFile(mapping.sidecarPath(key))
                if durable { try? POSIXFile.syncDirectory(POSIXFile.parentDirectory(of: objectPath)) }
                // S3 has no directories: drop the ones this delete emptied.
                Self.pruneEmptyDirectories(from: POSIXFile.parentDirectory(of: objectPath), stopAt: mapping.root)
                Self.pruneEmptyDirectories(from: POSIXFile.parentDirectory(of: mapping.sidecarPath(key)),
                                           stopAt: mapping.metadataDirectory)
            }
        } catch {
            throw failure(.localIO, "DELETE", key, error)
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

    /// Unlinks every object and sidecar, then syncs each directory they were in once (one fsync per directory
    /// instead of per object: the archiver removes thousands of staging copies after a bundle).
    public func delete(keys: [String]) async -> [String: any Error] {
        var failures: [String: any Error] = [:]
        var valid: [String] = []
        for key in keys {
            do {
                _ = try mapping.validate(key, operation: "DELETE")
                valid.append(key)
            } catch {
                failures[key] = error
            }
        }
        let mapping = self.mapping
        let durable = configuration.durable
        let validKeys = valid
        do {
            let systemFailures = try await blocking { () -> [String: String] in
                var failed: [String: String] = [:]
                var directories: Set<String> = []
                for key in validKeys {
                    let objectPath = mapping.objectPath(key)
                    do {
                        if let info = try POSIXFile.status(path: objectPath), !POSIXFile.isRegularFile(info) { continue }
                        try POSIXFile.removeFile(objectPath)
                        try POSIXFile.removeFile(mapping.sidecarPath(key))
                        directories.insert(POSIXFile.parentDirectory(of: objectPath))
                        directories.insert(POSIXFile.parentDirectory(of: mapping.sidecarPath(key)))
                    } catch {
                        failed[key] = "\(error)"
                    }
                }
                if durable {
                    for directory in directories { try? POSIXFile.syncDirectory(directory) }
                }
                for directory in directories.sorted(by: >) {
                    Self.pruneEmptyDirectories(from: directory, stopAt: directory.hasPrefix(mapping.metadataDirectory) ? mapping.metadataDirectory : mapping.root)
                }
                return failed
            }
            for (key, message) in systemFailures {
                failures[key] = ObjectStoreError(.localIO, operation: "DELETE", location: describe(key), message: message)
            }
        } catch {
            for key in valid { failures[key] = failure(.localIO, "DELETE", key, error) }
        }
        return failures
    }

    private static func pruneEmptyDirectories(from directory: String, stopAt root: String) {
        var current = directory
        while current.count > root.count, current.hasPrefix(root + "/"), POSIXFile.removeEmptyDirectory(current) {
            current = POSIXFile.parentDirectory(of: current)
        }
    }

    // MARK: copy / restore / presign

    public func copy(from sourceKey: String, to destinationKey: String, options: CopyOptions) async throws -> ObjectInfo {
        _ = try mapping.validate(destinationKey, operation: "CopyObject")
        let download = try await get(sourceKey)
        let source = download.info
        let put = PutOptions(storageClass: options.storageClass, contentType: source.contentType,
                             metadata: source.metadata)
        _ = try await self.put(destinationKey, from: .stream(download.body, length: download.contentLength),
                               options: put, journal: nil)
        guard let copied = try await head(destinationKey) else {
            throw ObjectStoreError(.localIO, operation: "CopyObject", location: describe(destinationKey),
                                   message: "the copy vanished")
        }
        return copied
    }

    public func requestRestore(_ key: String, days: Int, tier: RestoreTier) async throws -> RestoreRequestOutcome {
        _ = try mapping.validate(key, operation: "RestoreObject")
        let mapping = self.mapping
        let location = describe(key)
        let durable = configuration.durable
        let delay = TimeInterval(configuration.restoreDelay.components.seconds)
            + TimeInterval(configuration.restoreDelay.components.attoseconds) / 1e18
        return try await blocking { () throws -> RestoreRequestOutcome in
            guard let info = try POSIXFile.status(path: mapping.objectPath(key)), POSIXFile.isRegularFile(info) else {
                throw ObjectStoreError(.notFound, operation: "RestoreObject", location: location, message: "no such key",
                                       serverCode: "NoSuchKey")
            }
            guard var sidecar = Self.sidecar(for: key, info: info, mapping: mapping),
                  StorageClass(rawValue: sidecar.storageClass)?.needsRestoreBeforeRead == true else {
                throw ObjectStoreError(.invalidObjectState, operation: "RestoreObject", location: location,
                                       message: "restore is only for GLACIER and DEEP_ARCHIVE objects",
                                       serverCode: "InvalidObjectState")
            }
            let now = Date()
            if let ready = sidecar.restoreReadyAt, ready > now, sidecar.restoredUntil.map({ $0 > now }) == true {
                return .alreadyInProgress
            }
            let wasRestored = sidecar.restoredUntil.map { $0 > now } ?? false
            // Restores here finish at once (or after `restoreDelay`); the expiry counts from completion, as S3's does.
            let ready = wasRestored ? now : now.addingTimeInterval(delay)
            sidecar.restoreReadyAt = delay > 0 && !wasRestored ? ready : nil
            sidecar.restoredUntil = ready.addingTimeInterval(TimeInterval(max(1, days)) * 86_400)
            let data = try ObjectSidecar.encoder.encode(sidecar)
            if durable {
                try AtomicFile.write(data, to: mapping.sidecarPath(key))
            } else {
                try data.write(to: URL(fileURLWithPath: mapping.sidecarPath(key)))
            }
            return wasRestored ? .alreadyRestored : .started
        }
    }

    /// A `file://` URL of the object. It does not expire: access is whatever the file's permissions allow.
    public func presignedGetURL(_ key: String, expiresIn: Duration) async throws -> String {
        _ = try mapping.validate(key, operation: "presign GET")
        return "file://" + SigV4URIEncoding.encode(mapping.objectPath(key), encodeSlash: false)
    }

    public func listMultipartUploads(prefix: String) async throws -> [MultipartUploadInfo] { [] }

    public func abortMultipartUpload(_ key: String, uploadID: String) async throws {}

    /// Removes temporary files that writers which crashed left behind. Only files older than `age` are touched, so
    /// a write in progress in another process is safe.
    @discardableResult
    public func removeStaleTemporaryFiles(olderThan age: Duration = .seconds(86_400)) async throws -> Int {
        let directory = mapping.temporaryDirectory
        let cutoff = Date().addingTimeInterval(-TimeInterval(age.components.seconds))
        return try await blocking {
            var removed = 0
            for entry in try POSIXFile.directoryEntries(directory) where !entry.isDirectory {
                let path = directory + "/" + entry.name
                guard let info = try POSIXFile.status(path: path) else { continue }
                #if canImport(Darwin)
                let modified = TimeInterval(info.st_mtimespec.tv_sec)
                #else
                let modified = TimeInterval(info.st_mtim.tv_sec)
                #endif
                if Date(timeIntervalSince1970: modified) < cutoff {
                    try POSIXFile.removeFile(path)
                    removed += 1
                }
            }
            return removed
        }
    }
}

/// Streams a file's bytes in chunks read on the thread pool; closes the file at the end or when dropped.
final class FileChunkIterator: ChunkIterator {
    private var fd: Int32
    private var offset: Int64
    private var remaining: Int64
    private let chunkSize: Int

    init(fd: Int32, offset: Int64, remaining: Int64, chunkSize: Int) {
        self.fd = fd
        self.offset = offset
        self.remaining = remaining
        self.chunkSize = chunkSize
    }

    func next() async throws -> ByteBuffer? {
        guard fd >= 0 else { return nil }
        guard remaining > 0 else {
            closeFile()
            return nil
        }
        let count = Int(min(Int64(chunkSize), remaining))
        let (fd, offset) = (self.fd, self.offset)
        let chunk = try await blocking { try POSIXFile.read(fd: fd, offset: offset, count: count) }
        guard chunk.readableBytes > 0 else {
            closeFile()
            throw ObjectStoreError(.localIO, operation: "GET", location: "file descriptor \(fd)",
                                   message: "the file shrank while it was read")
        }
        self.offset += Int64(chunk.readableBytes)
        remaining -= Int64(chunk.readableBytes)
        return chunk
    }

    private func closeFile() {
        if fd >= 0 { POSIXFile.closeFile(fd) }
        fd = -1
    }

    deinit { closeFile() }
}
