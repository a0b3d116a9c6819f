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

    func failure(_ kind: ObjectStoreError.Kind, _ operation: String, _ key: String, _ error: any Error)
        -> ObjectStoreError
    {
        if let error = error as? ObjectStoreError { return error }
        return ObjectStoreError(kind, operation: operation, location: describe(key), message: "\(error)")
    }

    // MARK: copy / presign / multipart

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

    /// A `file://` URL of the object. It does not expire: access is whatever the file's permissions allow.
    public func presignedGet(_ key: String, expiresIn: Duration) async throws -> PresignedURL {
        _ = try mapping.validate(key, operation: "presign GET")
        return PresignedURL(url: "file://" + SigV4URIEncoding.encode(mapping.objectPath(key), encodeSlash: false), expires: nil)
    }

    public func listMultipartUploads(prefix: String) async throws -> [MultipartUploadInfo] { [] }

    public func abortMultipartUpload(_ key: String, uploadID: String) async throws {}
}
