import Foundation
import ObjectStore
import PipelineCore
import SystemIO

/// The spool as the uploader's "staging": a `file://` store rooted at the spool directory (temp file, fsync,
/// rename, directory fsync before the rows are written), with an optional size limit. When a write would take
/// the spool over the limit it waits, saying so once, until a sender has freed enough (nothing is dropped). A
/// file larger than the whole limit is let in once the spool is otherwise empty, so reading can always finish.
public struct SpoolStore: ObjectStore {
    public let spool: SpoolDirectory
    let files: FileSystemObjectStore
    let space: SpoolSpace?

    /// `limit`: bytes the spool may hold (nil: no limit). `onWait` gets one line when reading pauses and one when
    /// it goes on.
    public init(spool: SpoolDirectory, limit: Int64?, onWait: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        self.spool = spool
        self.files = try await FileSystemObjectStore(root: spool.path, configuration: .init(archivedObjectsNeedRestore: false))
        self.space = limit.map { SpoolSpace(root: spool.path, limit: $0, onWait: onWait) }
    }

    public var location: StorageURL { files.location }

    public func put(_ key: String, from source: ObjectSource, options: PutOptions, journal: (any MultipartUploadJournal)?) async throws -> PutResult {
        guard let space else { return try await files.put(key, from: source, options: options, journal: journal) }
        // Streams declare their length; a file (an ISO member hashed into a work file first) is measured.
        let size = try await source.length()
        try await space.reserve(size)
        do {
            let result = try await files.put(key, from: source, options: options, journal: journal)
            await space.release(size, written: true)
            return result
        } catch {
            await space.release(size, written: false)
            throw error
        }
    }

    /// Writes a small file that belongs to the one just written (a disc image's map of unreadable sectors) without
    /// waiting for room: the image's row, which a sender needs before it can free any, is written only after it.
    public func putBeside(_ key: String, bytes: [UInt8]) async throws {
        _ = try await files.put(key, from: .bytes(bytes), options: PutOptions(), journal: nil)
    }

    public func get(_ key: String, range: ByteRange?) async throws -> ObjectDownload { try await files.get(key, range: range) }
    public func head(_ key: String) async throws -> ObjectInfo? { try await files.head(key) }
    public func list(prefix: String, continuationToken: String?, maxKeys: Int) async throws -> ObjectListPage {
        try await files.list(prefix: prefix, continuationToken: continuationToken, maxKeys: maxKeys)
    }
    public func delete(_ key: String) async throws { try await files.delete(key) }
    public func syncNames(of keys: [String]) async throws { try await files.syncNames(of: keys) }
    public func delete(keys: [String]) async -> [String: any Error] { await files.delete(keys: keys) }
    public func copy(from sourceKey: String, to destinationKey: String, options: CopyOptions) async throws -> ObjectInfo {
        try await files.copy(from: sourceKey, to: destinationKey, options: options)
    }
    public func requestRestore(_ key: String, days: Int, tier: RestoreTier) async throws -> RestoreRequestOutcome {
        try await files.requestRestore(key, days: days, tier: tier)
    }
    public func presignedGet(_ key: String, expiresIn: Duration) async throws -> PresignedURL {
        try await files.presignedGet(key, expiresIn: expiresIn)
    }
    public func listMultipartUploads(prefix: String) async throws -> [MultipartUploadInfo] { try await files.listMultipartUploads(prefix: prefix) }
    public func abortMultipartUpload(_ key: String, uploadID: String) async throws { try await files.abortMultipartUpload(key, uploadID: uploadID) }
}

/// The spool's size limit: what is on disk (measured) plus what is being written (reserved). A reservation is
/// given back only once a measurement that started after the write ended has seen its file, so a finished file is
/// never counted by neither.
actor SpoolSpace {
    let root: String
    let limit: Int64
    let onWait: @Sendable (String) -> Void
    private var reserved: Int64 = 0
    private var finished: [(size: Int64, at: ContinuousClock.Instant)] = []
    private var waiting = 0
    private var measured: (used: Int64, at: ContinuousClock.Instant)?

    init(root: String, limit: Int64, onWait: @escaping @Sendable (String) -> Void) {
        self.root = root
        self.limit = limit
        self.onWait = onWait
    }

    func reserve(_ size: Int64) async throws {
        var announced = false
        while true {
            // Walking the spool costs a stat per file: a measurement serves for a second (it can only overstate
            // what is there, since senders only take files away, and writes since are still reserved).
            var fresh = false
            if measured == nil || ContinuousClock.now - measured!.at > .seconds(1) {
                try await measure()
                fresh = true
            }
            let used = measured!.used
            if used + reserved + size <= limit || (used == 0 && reserved == 0) {
                reserved += size
                if announced {
                    waiting -= 1
                    if waiting == 0 { onWait("spool has room again (\(Format.bytes(used + reserved)) of \(Format.bytes(limit))): reading goes on") }
                }
                return
            }
            guard fresh else {
                measured = nil  // a stale look said full: look again before waiting
                continue
            }
            if !announced {
                announced = true
                waiting += 1
                if waiting == 1 {
                    onWait("spool full (\(Format.bytes(used + reserved)) of \(Format.bytes(limit)) in \(root)): reading paused until `uploader send` frees space; nothing is dropped")
                }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Walks the spool; writes that ended before the walk began are on disk now, counted in it, and no longer reserved.
    private func measure() async throws {
        let started = ContinuousClock.now
        let root = self.root
        let used = try await blocking { SpoolDirectory.usedBytes(root) }
        reserved -= finished.filter { $0.at < started }.reduce(0) { $0 + $1.size }
        finished.removeAll { $0.at < started }
        measured = (used, started)
    }

    /// A write ended: a written file stays reserved until a measurement sees it; a failed one frees its room now.
    func release(_ size: Int64, written: Bool) {
        if written {
            finished.append((size, ContinuousClock.now))
        } else {
            reserved -= size
        }
    }
}
