import ArchiveFormat
import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import Synchronization
import JobQueue
import SystemIO

/// The archive step: dedupe by SHA-256, pack small files into bundles, store large files and disc images
/// alone, verify, record, and only then remove the staging copies.
public struct ArchiveHandler: JobHandler {
    public let configuration: ArchiveConfiguration
    let staging: any ObjectStore
    let archive: any ObjectStore
    let housekeepingState = HousekeepingState()
    /// What else runs between batches (the scheduled maintenance tasks); the program sets it.
    public var betweenBatches: (any BetweenBatchesWork)?

    public init(configuration: ArchiveConfiguration, staging: any ObjectStore, archive: any ObjectStore) throws {
        self.configuration = configuration
        self.staging = staging
        self.archive = archive
        try FileManager.default.createDirectory(atPath: configuration.workDirectory, withIntermediateDirectories: true)
    }

    public func handle(_ jobs: [ClaimedFile], context: JobContext) async -> [Int64: JobOutcome] {
        let catalog = ArchiveCatalog(client: context.client, logger: context.logger)
        var outcomes: [Int64: JobOutcome] = [:]
        let items: [ArchiveItem]
        let holders: [SourceTier: [String: ContentHolders]]
        do {
            items = try await catalog.load(jobs)
            holders = try await catalog.holders(of: Array(Set(items.map(\.originalHash))), excluding: jobs.map(\.fileID))
        } catch {
            return Dictionary(uniqueKeysWithValues: jobs.map { ($0.fileID, .failed(CatalogDatabase.describe(error), permanent: false)) })
        }

        // Dedupe: content already archived makes a duplicate; content another row is still taking to the archive
        // waits for it (the lowest id goes first); the same content twice in this batch is archived once. Per tier:
        // a warm file takes only a warm holder (`TierDedupe`), so it is led only by a warm row of the batch.
        var leaders: [String: ArchiveItem] = [:]
        var followers: [(item: ArchiveItem, leader: Int64)] = []
        var duplicates: [(item: ArchiveItem, holder: Int64)] = []
        for item in items {
            let known = holders[item.tier]?[item.originalHash]
            let leaderKey = item.tier.rawValue + ":" + item.originalHash
            if let holder = known?.archived {
                duplicates.append((item, holder))
            } else if let pending = known?.pending, pending < item.job.fileID {
                outcomes[item.job.fileID] = .deferred(.seconds(10))
            } else if let leader = leaders[leaderKey] {
                followers.append((item, leader.job.fileID))
            } else {
                leaders[leaderKey] = item
            }
        }
        outcomes.merge(await recordDuplicates(duplicates, catalog: catalog, context: context)) { $1 }

        let toArchive = leaders.values.sorted { $0.job.fileID < $1.job.fileID }
        let isSingle = { (item: ArchiveItem) in item.kind == .discImage || item.contentSize >= configuration.smallFileThreshold(for: item.tier) }
        let singles = toArchive.filter(isSingle)
        let small = toArchive.filter { !isSingle($0) }

        await withTaskGroup(of: [Int64: JobOutcome].self) { group in
            // Warm and cold files never share a bundle: each tier has its own class and bundle size.
            for tier in SourceTier.allCases {
                let members = small.filter { $0.tier == tier }
                if !members.isEmpty { group.addTask { await archiveBundles(members, tier: tier, catalog: catalog, context: context) } }
            }
            group.addTask { await archiveSingles(singles, catalog: catalog, context: context) }
            for await result in group { outcomes.merge(result) { $1 } }
        }

        // Followers become duplicates of their leader once it is archived; otherwise they wait for the retry.
        let ready = followers.filter { outcomes[$0.leader] == .completed }.map { (item: $0.item, holder: $0.leader) }
        outcomes.merge(await recordDuplicates(ready, catalog: catalog, context: context)) { $1 }
        for follower in followers where outcomes[follower.leader] != .completed {
            outcomes[follower.item.job.fileID] = .deferred(.seconds(10))
        }
        if outcomes.values.contains(.completed) { housekeepingState.noteArchived() }
        return outcomes
    }

    func recordDuplicates(_ duplicates: [(item: ArchiveItem, holder: Int64)], catalog: ArchiveCatalog, context: JobContext) async -> [Int64: JobOutcome] {
        guard !duplicates.isEmpty else { return [:] }
        do {
            let result = try await catalog.recordDuplicates(duplicates, workerID: context.workerID)
            let changed = result.recorded
            for duplicate in duplicates where changed.contains(duplicate.item.job.fileID) {
                context.logger.info("duplicate of archived content", metadata: [
                    "file.id": "\(duplicate.item.job.fileID)", "file.duplicate_of": "\(duplicate.holder)", "source.label": "\(duplicate.item.sourceLabel)",
                ])
            }
            await removeQueued(duplicates.filter { changed.contains($0.item.job.fileID) }.compactMap(\.item.stagingKey), area: .staging, catalog: catalog, logger: context.logger)
            // A holder deleted since the batch was looked at: back to the queue, to be matched or archived anew.
            return Dictionary(uniqueKeysWithValues: duplicates.map { duplicate in
                let id = duplicate.item.job.fileID
                return (id, changed.contains(id) ? .completed : result.holderGone.contains(id) ? .deferred(.seconds(1)) : .leaseLost)
            })
        } catch {
            return Dictionary(uniqueKeysWithValues: duplicates.map { ($0.item.job.fileID, .failed(CatalogDatabase.describe(error), permanent: false)) })
        }
    }

    // MARK: single files

    func archiveSingles(_ items: [ArchiveItem], catalog: ArchiveCatalog, context: JobContext) async -> [Int64: JobOutcome] {
        let results = await concurrentMap(items, limit: max(1, configuration.singleFileConcurrency)) { item in
            // Not started once the batch is cut off: the worker hands such rows back.
            if Task.isCancelled { return (item.job.fileID, JobOutcome.failed("cancelled at shutdown", permanent: false)) }
            return (item.job.fileID, await archiveSingle(item, catalog: catalog, context: context))
        }
        return Dictionary(uniqueKeysWithValues: results)
    }

    /// The archive key of a file stored alone: by content and row, so a retry after a crash finds its own upload.
    func singleKey(_ item: ArchiveItem) -> String {
        let hash = item.contentHash
        var ext = ((item.stagingKey ?? "") as NSString).pathExtension.lowercased()
        if ext.isEmpty { ext = (item.name as NSString).pathExtension.lowercased() }
        let cleanExt = ext.count <= 8 && !ext.isEmpty && ext.allSatisfy({ $0.isLetter || $0.isNumber }) ? "." + ext : ""
        return "files/\(hash.prefix(2))/\(hash)-\(item.job.fileID)\(cleanExt)"
    }

    func archiveSingle(_ item: ArchiveItem, catalog: ArchiveCatalog, context: JobContext) async -> JobOutcome {
        let started = ContinuousClock.now
        do {
            guard let stagingKey = item.stagingKey else { throw ArchiveError.stagingObjectMissing(fileID: item.job.fileID, key: "-") }
            let key = singleKey(item)
            var objectMetadata = SingleObjectMetadata(
                fileID: item.job.fileID, sha256: item.contentHash, originalSHA256: item.originalHash, sourceLabel: item.sourceLabel,
                path: item.path, version: item.version, kind: item.kind.rawValue, originalSize: item.originalSize, modifiedAt: item.modifiedAt)
            if let sealed = item.sealed {
                // Encrypted: the label, path and time travel sealed, never in the clear.
                (objectMetadata.sourceLabel, objectMetadata.path, objectMetadata.modifiedAt, objectMetadata.sealed) = (nil, nil, nil, sealed)
            }
            let metadata = objectMetadata.headers
            // An earlier attempt may have uploaded it and died before recording it: reuse it only if its content is
            // verifiably the file's (read back, or the server's own checksum or ETag against the staging copy),
            // never on the strength of its metadata.
            let storageClass = configuration.storageClass(for: item.tier)
            let options = PutOptions(storageClass: storageClass, metadata: metadata)
            let staging = self.staging
            let existing = try await archive.head(key)
            var reusable = false
            if let existing {
                // A check that cannot be made (the staging copy gone, a network error) means: send it again.
                reusable = (try? await StoredContentCheck.holds(
                    existing, in: archive, sha256: item.contentHash, size: item.contentSize, options: options
                ) { try await staging.get(stagingKey).body }) ?? false
            }
            if existing != nil && !reusable {
                context.logger.warning("an object at the file's archive key is not verifiably its content; uploading again", metadata: [
                    "file.id": "\(item.job.fileID)", "archive.key": "\(key)",
                ])
            }
            if !reusable {
                let download: ObjectDownload
                do {
                    download = try await staging.get(stagingKey)
                } catch let error as ObjectStoreError where error.kind == .notFound {
                    throw ArchiveError.stagingObjectMissing(fileID: item.job.fileID, key: stagingKey)
                }
                let result = try await archive.put(key, from: .stream(download.body, length: item.contentSize), options: options)
                guard result.sha256 == item.contentHash else {
                    try? await archive.delete(key)
                    throw ArchiveError.contentMismatch(fileID: item.job.fileID, key: stagingKey, expected: item.contentHash, actual: result.sha256)
                }
            }
            try await verify(key, size: item.contentSize, storageClass: storageClass)
            crashIfAsked(.singleUploaded)

            var extraKeys: [String] = []
            if let mapKey = item.rescueMapKey {
                // The map of unreadable sectors stays readable (STANDARD) next to the image.
                let map = try await staging.getBytes(mapKey)
                _ = try await archive.put(key + ".map", bytes: map, options: PutOptions(storageClass: .standard, contentType: "text/plain"))
                extraKeys.append(mapKey)
            }
            var signedURL: PresignedURL?
            if !storageClass.needsRestoreBeforeRead {
                // Unsigned is not an error: the refresh in housekeeping signs it later (`SignedURLRefresh`).
                signedURL = try? await archive.presignedGet(key, expiresIn: SignedURLRefresh.lifetime)
            }
            guard context.stillHolds(item.job) else { return .leaseLost }
            let placement = ArchivedPlacement(
                item: item, archiveKey: key, bundleOffset: nil, storedSize: item.contentSize, storedHash: item.contentHash,
                signedURL: signedURL, extraStagingKeys: extraKeys)
            let changed = try await catalog.recordArchived([placement], bundle: nil, workerID: context.workerID)
            guard changed.contains(item.job.fileID) else { return .leaseLost }
            crashIfAsked(.recorded)
            await removeQueued([stagingKey] + extraKeys, area: .staging, catalog: catalog, logger: context.logger)
            context.logger.info("archived", metadata: [
                "file.id": "\(item.job.fileID)", "source.label": "\(item.sourceLabel)", "file.kind": "\(item.kind.rawValue)",
                "archive.key": "\(key)", "bytes": "\(item.contentSize)", "duration_ms": "\(Int((ContinuousClock.now - started).seconds * 1000))",
            ])
            return .completed
        } catch {
            return failure(error)
        }
    }

    /// The object is there, complete, and in the class asked for.
    func verify(_ key: String, size: Int64, storageClass: StorageClass) async throws {
        guard let info = try await archive.head(key) else {
            throw ArchiveError.verificationFailed(key: key, problem: "not found after the upload")
        }
        guard info.size == size else {
            throw ArchiveError.verificationFailed(key: key, problem: "\(info.size) bytes stored, \(size) sent")
        }
        guard info.storageClassName == storageClass.rawValue else {
            throw ArchiveError.verificationFailed(key: key, problem: "stored in class \(info.storageClassName), not \(storageClass)")
        }
    }

    /// The crash tests' hook: dies like an out-of-memory kill would, with no chance to clean up.
    func crashIfAsked(_ point: ArchiveCrashPoint) {
        if configuration.crashPoint == point { kill(getpid(), SIGKILL) }
    }

    func failure(_ error: any Error) -> JobOutcome {
        if error is CancellationError { return .failed("cancelled at shutdown", permanent: false) }
        if let error = error as? ArchiveError { return .failed(error.description, permanent: error.isPermanent) }
        return .failed(CatalogDatabase.describe(error), permanent: false)
    }

    // MARK: bundles

    /// Members of at most this size are read ahead, several at a time, into memory; larger ones stream.
    static let prefetchLimit: Int64 = 1 << 20
    static let prefetchWindow = 16

    func archiveBundles(_ items: [ArchiveItem], tier: SourceTier, catalog: ArchiveCatalog, context: JobContext) async -> [Int64: JobOutcome] {
        let targetSize = configuration.bundleTargetSize(for: tier)
        var outcomes: [Int64: JobOutcome] = [:]
        let ordered = items.sorted { ($0.sourceLabel, $0.path, $0.version) < ($1.sourceLabel, $1.path, $1.version) }
        var writer: BundleWriter?
        var included: [ArchiveItem] = []
        // Small members are fetched ahead (a window of 16, at most 16 MiB) while earlier ones are written, so
        // the round trips to staging overlap; the tar is still written in order.
        var prefetched: [Int: Task<ObjectByteStream, any Error>] = [:]
        func prefetch(_ index: Int) {
            guard index < ordered.count, prefetched[index] == nil, ordered[index].contentSize <= Self.prefetchLimit else { return }
            let item = ordered[index]
            let staging = self.staging
            prefetched[index] = Task {
                guard let key = item.stagingKey else { throw ArchiveError.stagingObjectMissing(fileID: item.job.fileID, key: "-") }
                let bytes = try await staging.getBytes(key, limit: Int(Self.prefetchLimit) + 1)
                return ObjectByteStream(bytes: bytes)
            }
        }
        defer { for task in prefetched.values { task.cancel() } }
        for index in 0..<min(Self.prefetchWindow, ordered.count) { prefetch(index) }

        for (index, item) in ordered.enumerated() {
            prefetch(index + Self.prefetchWindow)
            if Task.isCancelled { break }
            if let current = writer, !current.isEmpty, current.rawBytes + item.contentSize > targetSize {
                outcomes.merge(await finishBundle(current, included, tier: tier, catalog: catalog, context: context)) { $1 }
                writer = nil
                included = []
            }
            do {
                if writer == nil { writer = try BundleWriter(directory: configuration.workDirectory) }
                let body: ObjectByteStream
                if let task = prefetched.removeValue(forKey: index) {
                    do {
                        body = try await task.value
                    } catch let error as ObjectStoreError where error.kind == .notFound {
                        throw ArchiveError.stagingObjectMissing(fileID: item.job.fileID, key: item.stagingKey ?? "-")
                    }
                } else {
                    guard let stagingKey = item.stagingKey else { throw ArchiveError.stagingObjectMissing(fileID: item.job.fileID, key: "-") }
                    do {
                        body = try await staging.get(stagingKey).body
                    } catch let error as ObjectStoreError where error.kind == .notFound {
                        throw ArchiveError.stagingObjectMissing(fileID: item.job.fileID, key: stagingKey)
                    }
                }
                try await writer!.append(item, body: body)
                included.append(item)
                if included.count == 2 { crashIfAsked(.midBundle) }
            } catch {
                outcomes[item.job.fileID] = failure(error)
            }
        }
        if let writer {
            if writer.isEmpty || Task.isCancelled {
                writer.discard()
            } else {
                outcomes.merge(await finishBundle(writer, included, tier: tier, catalog: catalog, context: context)) { $1 }
            }
        }
        return outcomes
    }

    func finishBundle(
        _ writer: BundleWriter, _ included: [ArchiveItem], tier: SourceTier, catalog: ArchiveCatalog, context: JobContext
    ) async -> [Int64: JobOutcome] {
        defer { writer.discard() }
        let storageClass = configuration.storageClass(for: tier)
        let started = ContinuousClock.now
        var createdBundle: Int64?
        do {
            let finished = try await writer.finish(compressionLevel: configuration.compressionLevel)
            let compressed = ContinuousClock.now
            let now = Date()
            let calendar = Calendar(identifier: .gregorian)
            let parts = calendar.dateComponents(in: TimeZone(identifier: "UTC")!, from: now)
            let key = String(format: "bundles/%04d/%02d/", parts.year ?? 0, parts.month ?? 0)
                + UUID().uuidString.lowercased() + (finished.compression == "zstd" ? ".tar.zst" : ".tar")
            let manifestKey = key + ".manifest.json"
            let bundleID = try await catalog.createBundle(
                archiveKey: key, manifestKey: manifestKey, compression: finished.compression,
                memberCount: finished.manifest.members.count, rawBytes: writer.rawBytes, owner: context.workerID)
            createdBundle = bundleID
            let result = try await archive.put(key, from: .file(finished.path), options: PutOptions(
                storageClass: storageClass,
                contentType: finished.compression == "zstd" ? "application/zstd" : "application/x-tar",
                metadata: ["sha256": finished.sha256, "bundle-id": String(bundleID), "tar-bytes": String(finished.tarBytes)]))
            guard result.sha256 == finished.sha256 else {
                throw ArchiveError.verificationFailed(key: key, problem: "the bytes sent hash to \(result.sha256), the bundle written to \(finished.sha256)")
            }
            try await verify(key, size: finished.size, storageClass: storageClass)
            crashIfAsked(.bundleUploaded)

            var sidecar = finished.manifest
            sidecar.bundleKey = key
            sidecar.bundleID = bundleID
            sidecar.compression = finished.compression
            sidecar.tarBytes = finished.tarBytes
            sidecar.storedBytes = finished.size
            sidecar.storedSHA256 = finished.sha256
            _ = try await archive.put(manifestKey, bytes: try sidecar.encoded(), options: PutOptions(storageClass: .standard, contentType: "application/json"))

            let stored = ContinuousClock.now
            let offsets = Dictionary(uniqueKeysWithValues: finished.manifest.members.map { ($0.fileID, $0) })
            let placements = included.compactMap { item -> ArchivedPlacement? in
                guard let member = offsets[item.job.fileID] else { return nil }
                return ArchivedPlacement(item: item, archiveKey: key, bundleOffset: member.offset, storedSize: member.size, storedHash: member.sha256)
            }
            let changed = try await catalog.recordArchived(
                placements,
                bundle: BundleCompletion(bundleID: bundleID, storedBytes: finished.size, hash: finished.sha256, storageClass: storageClass.rawValue),
                workerID: context.workerID)
            crashIfAsked(.recorded)
            let recorded = ContinuousClock.now
            await removeInBackground(included.filter { changed.contains($0.job.fileID) }.compactMap(\.stagingKey), catalog: catalog, logger: context.logger)
            let milliseconds = { (duration: Duration) in "\(Int(duration.seconds * 1000))" }
            context.logger.info("bundle archived", metadata: [
                // Where a slow bundle spent its time: compressing, storing and verifying, the catalog transaction,
                // waiting for the previous bundle's staging copies to be removed.
                "compress_ms": "\(milliseconds(compressed - started))", "store_ms": "\(milliseconds(stored - compressed))",
                "record_ms": "\(milliseconds(recorded - stored))", "cleanup_wait_ms": "\(milliseconds(ContinuousClock.now - recorded))",
                "bundle.id": "\(bundleID)", "archive.key": "\(key)", "bundle.members": "\(changed.count)", "bundle.tier": "\(tier)",
                "bundle.compression": "\(finished.compression)", "bytes": "\(writer.rawBytes)", "bytes_stored": "\(finished.size)",
                "duration_ms": "\(Int((ContinuousClock.now - started).seconds * 1000))",
            ])
            return Dictionary(uniqueKeysWithValues: included.map { ($0.job.fileID, changed.contains($0.job.fileID) ? .completed : .leaseLost) })
        } catch {
            let outcome = failure(error)
            context.logger.warning("bundle not archived", metadata: ["error": "\(CatalogDatabase.describe(error))", "bundle.members": "\(included.count)"])
            if let createdBundle { await abandonBundle(createdBundle, catalog: catalog, context: context) }
            return Dictionary(uniqueKeysWithValues: included.map { ($0.job.fileID, outcome) })
        }
    }

    /// A bundle that was created but not recorded is given up at once, its objects removed; what cannot be done
    /// now (the database or the store failing too) is left to the sweep, which finds the bundle or the queue entry.
    func abandonBundle(_ id: Int64, catalog: ArchiveCatalog, context: JobContext) async {
        do {
            await removeQueued(try await catalog.abandonBundle(id, workerID: context.workerID), area: .archive, catalog: catalog, logger: context.logger)
        } catch {
            context.logger.warning("bundle not given up yet; the sweep will", metadata: ["bundle.id": "\(id)", "error": "\(CatalogDatabase.describe(error))"])
        }
    }

    // MARK: removing what is no longer needed

    /// Removes a recorded bundle's staging copies while the next batch is read: the removal is queued in the
    /// catalog by the transaction that recorded the bundle, so it needs no waiting for (a crash leaves it to the
    /// sweep). One removal runs at a time: a bundle waits here for the previous one's, and ``finishRemovals()`` for
    /// the last (before `--once` exits, and at shutdown).
    func removeInBackground(_ keys: [String], catalog: ArchiveCatalog, logger: Logger) async {
        await finishRemovals()
        guard !keys.isEmpty else { return }
        let task = Task { await self.removeQueued(keys, area: .staging, catalog: catalog, logger: logger) }
        housekeepingState.removal.withLock { $0 = task }
    }

    /// Waits for the staging removal that ``removeInBackground(_:catalog:logger:)`` started, if any.
    func finishRemovals() async {
        await housekeepingState.removal.withLock { $0.take() }?.value
    }

    /// Removes objects whose removal a transaction queued (staging copies of what a batch archived, the objects of a
    /// given-up bundle), then their queue entries; what fails stays queued for the sweep.
    func removeQueued(_ keys: [String], area: StorageArea, catalog: ArchiveCatalog, logger: Logger) async {
        guard !keys.isEmpty else { return }
        let failures = await (area == .archive ? archive : staging).delete(keys: keys)
        for (key, error) in failures.sorted(by: { $0.key < $1.key }) {
            logger.warning("\(area.rawValue) object not removed yet; the sweep will retry", metadata: ["storage.key": "\(key)", "error": "\(error)"])
        }
        try? await catalog.finishDeletes(area: area, keys: keys.filter { failures[$0] == nil })
    }
}

/// When housekeeping last ran, and whether anything was archived since the last catalog export.
final class HousekeepingState: Sendable {
    struct State {
        var lastSweep: ContinuousClock.Instant?
        /// The last sweep of staging leftovers (hourly: it lists the staging bucket's `sources/`).
        var lastLeftoverSweep: ContinuousClock.Instant?
        var lastExport: ContinuousClock.Instant?
        var archivedSinceExport = true
    }

    let state = Mutex(State())
    /// The staging removal of the last recorded bundle, running while the next batch is read.
    let removal = Mutex<Task<Void, Never>?>(nil)

    func noteArchived() { state.withLock { $0.archivedSinceExport = true } }
}
