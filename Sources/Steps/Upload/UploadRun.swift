import ArchiveFormat
import Catalog
import Foundation
import Logging
import SystemIO
import NIOCore
import ObjectStore
import PipelineCore
import SourceReading

/// The settings of one `uploader upload` run.
public struct UploadConfiguration: Sendable {
    public var label: String
    public var metadata: [String: String]
    public var note: String?
    /// Archive raw videos as they are, each with its transcode beside it (`--keep-raw`; sticky per source).
    public var keepRaw = false
    /// The source's tier (`--tier`): nil keeps what the source has (cold for a new one). Fixed once it holds files.
    public var tier: SourceTier?
    public var excludes: [String]
    /// In git work trees found in the source, leave out what git ignores (`--no-gitignore` turns it off).
    public var respectGitIgnore = true
    /// `--check-unchanged PERCENT`: that share of the files unchanged by size and time is read again each run (a
    /// rolling sample: every file within 100/PERCENT runs) to catch bit rot on the original medium.
    public var checkUnchangedPercent = 0
    /// Store each git repository as one file (a verified `git bundle` and the rest of `.git`), not file by file.
    public var keepGitRepositoriesWhole = true
    /// Where a repository's file is made before it is sent (the uploader's spool directory).
    public var workDirectory = FileManager.default.temporaryDirectory.path
    /// Files read and uploaded at the same time.
    public var concurrency: Int
    /// Walk, classify and compare with the catalog, but read no content and store nothing.
    public var dryRun: Bool
    public var putOptions: PutOptions
    public var readConfiguration: ChunkedReadConfiguration
    /// Client-side encryption (age) of the source, when asked for; a source encrypted once is refused without it.
    public var encryption: UploadEncryptionSettings?
    /// Tests only (the programs set it from `BACKUP_UPLOADER_TEST_CRASH_AFTER_UPLOAD=1`, TestHooks): SIGKILL itself
    /// after a multipart upload completed and before the file is recorded, to prove the next run keeps that upload.
    public var testCrashAfterUpload = false
    /// Tests only (`BACKUP_UPLOADER_TEST_CRASH_AFTER_MAP=1`): SIGKILL itself after a disc image and its map are stored
    /// and before the image's row is written, to prove the map left behind is swept.
    public var testCrashAfterImageMap = false
    /// Where the local per-source indexes live (`<data dir>/upload-index`); nil: no index is read or written.
    public var indexDirectory: String?
    /// False (`--no-index`): the index is not read (every file asks the catalog), but a fresh one is written.
    public var useLocalIndex = true
    /// Who the source belongs to (`--owner` or the default), recorded when the source opens unless it has an owner.
    public var owner: SourceOwnerChoice?

    public init(label: String, metadata: [String: String] = [:], note: String? = nil, excludes: [String] = [],
                concurrency: Int = 8, dryRun: Bool = false, putOptions: PutOptions = PutOptions(),
                readConfiguration: ChunkedReadConfiguration = ChunkedReadConfiguration()) {
        self.label = label
        self.metadata = metadata
        self.note = note
        self.excludes = excludes
        self.concurrency = concurrency
        self.dryRun = dryRun
        self.putOptions = putOptions
        self.readConfiguration = readConfiguration
    }
}

/// Ingests one source (a directory or mounted disc) into staging and the catalog.
///
/// Each file is read once: hashed and uploaded in the same stream. Before sending, a file whose size matches
/// content already catalogued is hashed first and, if its hash is known, recorded as a duplicate without
/// uploading. A row exists only once the bytes are safely in staging. Interrupted runs resume: catalogued files
/// are skipped by path, size and time, and a half-sent multipart upload continues from its journal.
public struct UploadRun: Sendable {
    let catalog: IngestCatalog
    let staging: any ObjectStore
    let configuration: UploadConfiguration
    let progress: UploadProgress
    let logger: Logger
    /// Where finished files wait to be catalogued together: one transaction for all that are waiting, after one
    /// sync of their staging directories (their objects were written with deferred name syncs).
    let recorder: GroupCommit<IngestRecord, CatalogOutcome>
    /// Where files wait for the catalog's answer about their path and size: one query for all that are waiting.
    let lookUps: GroupCommit<CatalogLookUp, CatalogLookUpResult>
    /// The source's encryption, once ``openSource(origin:)`` agreed on it with the catalog (nil: in the clear).
    let encryption = LockedBox<RunEncryption?>(nil)
    /// The run's snapshot, opened with the source.
    let snapshot = LockedBox<SnapshotHandle?>(nil)
    /// The source's local index for this run (`LocalIndex/`), once the source is open; nil without one.
    let index = LockedBox<UploadIndexSession?>(nil)
    /// The rows the run's catalog writes returned.
    let recordedRows: RecordedRows

    public init(catalog: IngestCatalog, staging: any ObjectStore, configuration: UploadConfiguration, progress: UploadProgress, logger: Logger) {
        self.catalog = catalog
        let recordedRows = RecordedRows()
        self.recordedRows = recordedRows
        self.recorder = GroupCommit { records in
            try await staging.syncNames(of: records.compactMap(\.stagingKey))
            let outcomes = try await catalog.record(records)
            recordedRows.note(records, outcomes)
            return outcomes
        }
        self.lookUps = GroupCommit { try await catalog.lookUp($0) }
        self.staging = staging
        self.configuration = configuration
        self.progress = progress
        self.logger = logger
    }

    public func run(root: String) async throws -> UploadReport {
        let started = ContinuousClock.now
        let runStarted = UploadIndexStore.now()  // before the first lstat: the index's racy rule counts from here
        var report = UploadReport()
        report.label = configuration.label
        let walkerConfiguration = SourceWalkerConfiguration(
            excludes: try configuration.excludes.map(ExcludePattern.init), respectGitIgnore: configuration.respectGitIgnore,
            keepGitRepositoriesWhole: configuration.keepGitRepositoriesWhole, gitRules: GitRulesCache())
        let walker = SourceWalker(root: RawPath(root), configuration: walkerConfiguration)

        // A metadata-only pass first, so that progress has totals and an ETA. It runs while the catalog opens the
        // source (a cold walk waits on the disk, the catalog on its server), once the root is known to open: a
        // source directory that cannot be read is refused before the catalog is touched.
        try await walker.checkRoot()
        // Several readers warm a cold tree's directories ahead of the counting walk, which waits on each in turn.
        let prefetch = DirectoryPrefetch(root: RawPath(root), configuration: walkerConfiguration)
        defer { prefetch.stop() }
        async let counted = walker.walk { _ in }
        let sourceID = configuration.dryRun
            ? -1
            : try await openSource(origin: root)
        if !configuration.dryRun { try await openIndex(sourceID: sourceID, root: root, runStarted: runStarted) }
        let plan = try await counted
        prefetch.stop()
        await progress.planned(files: plan.files, bytes: plan.bytes)
        let gate = SameSizeGate()
        let results = ResultCollector()
        // `concurrency` files are read and sent at a time; more may wait for the catalog, so that a batch of
        // small files is catalogued in one transaction while the next ones are already being read.
        let readers = ReadSlots(count: max(1, configuration.concurrency))
        // A local store's files wait longest for their fsyncs and the catalog, and hold no buffer while waiting for
        // the catalog: a wider window keeps the disk busy meanwhile.
        let filesInFlight = max(1, configuration.concurrency) * (storesLocally ? 32 : 8)

        try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight = 0
            // Back-pressure: the walk waits while `filesInFlight` files are being stored.
            func admit(_ work: @escaping @Sendable () async throws -> Void) async throws {
                if inFlight >= filesInFlight {
                    try await group.next()
                    inFlight -= 1
                }
                inFlight += 1
                group.addTask(operation: work)
            }
            _ = try await walker.walk { entry in
                switch entry {
                case .file(let file):
                    try await admit {
                        let outcome = try await ingest(file, sourceID: sourceID, gate: gate, readers: readers)
                        await results.add(outcome, path: file.relativePath, size: file.size)
                    }
                case .skipped(let skipped) where skipped.reason.isWalkProblem:
                    await results.walkProblem(WalkProblem(
                        path: skipped.relativePath.catalogText, rawPath: skipped.relativePath.isValidUTF8 ? nil : skipped.relativePath.bytes,
                        problem: skipped.reason.description))
                case .skipped(let skipped):
                    await results.skip("\(skipped.relativePath.catalogText): \(skipped.reason)")
                case .excluded(let path, let isDirectory):
                    await results.skip("\(path.catalogText)\(isDirectory ? "/" : ""): excluded by --exclude")
                case .gitIgnored(let ignored):
                    await results.gitIgnored(ignored)
                case .gitRepository(let repository):
                    try await admit {
                        try await keepWhole(repository, root: RawPath(root), sourceID: sourceID, gate: gate, readers: readers, results: results)
                    }
                case .gitRulesUnreadable(let problem):
                    await results.note("git work tree \(problem.workTree.bytes.isEmpty ? "." : problem.workTree.catalogText): its ignore rules "
                        + "could not be read, so everything in it was kept (\(problem.message))")
                case .directory:
                    break
                }
            }
            try await group.waitForAll()
        }

        report = await results.fill(report)
        report.elapsed = ContinuousClock.now - started
        if !configuration.dryRun {
            report.snapshotCopiedFrom = try await finishSource(sourceID, report: report)
            await saveIndex(sourceID: sourceID, into: &report)
        }
        await progress.finished(report)
        return report
    }

    /// Opens (or reopens) the source in the catalog and settles its encryption, before any file is read.
    func openSource(origin: String) async throws -> Int64 {
        try await checkTier()
        // Refused before the source is touched: reopening it would mark someone else's finished source unfinished.
        if let owner = configuration.owner, owner.explicit, let current = try await catalog.otherOwner(ofSource: configuration.label, than: owner.id) {
            throw IngestError(.invalidArgument, path: configuration.label,
                              SourceOwnerChoice.refusal(label: configuration.label, currentOwner: current, requested: owner.name))
        }
        let sourceID = try await catalog.openSource(
            label: configuration.label, metadata: configuration.metadata, note: configuration.note, keepRaw: configuration.keepRaw,
            tier: configuration.tier, origin: origin)
        if let owner = configuration.owner { try await catalog.giveOwnerIfNone(sourceID: sourceID, ownerID: owner.id) }
        encryption.value = try await setUpEncryption(sourceID: sourceID, origin: origin)
        snapshot.value = try await catalog.snapshots.begin(sourceID: sourceID)
        return sourceID
    }

    /// An encrypted source's row carries its placement sealed, whether its bytes are sent or it is a duplicate.
    func sealIfEncrypted(_ file: inout IngestedFile) throws {
        try encryption.value?.prepare(&file, sourceLabel: configuration.label)
    }

    /// Closes the run in the catalog: its walk problems replace the source's earlier ones (none after a complete
    /// walk), then the counts and the finish time. In that order, so a finished run always has its problems on record.
    /// Returns the snapshot the run's own was copied from (nil: compared path by path).
    func finishSource(_ sourceID: Int64, report: UploadReport) async throws -> Int? {
        try await catalog.recordWalkProblems(sourceID: sourceID, report.walkProblems)
        var copiedFrom: Int?
        if let handle = snapshot.value {
            copiedFrom = try await finishSnapshotAsCopy(handle, sourceID: sourceID, report: report)
            if copiedFrom == nil {
                try await catalog.snapshots.finish(
                    snapshotID: handle.id, sourceID: sourceID, seenPaths: report.seenPaths, unreadPaths: report.walkProblems.map(\.path),
                    bytesUploaded: report.bytesUploaded)
            }
        }
        try await catalog.finishSource(sourceID, counts: SourceCounts(
            filesSeen: Int64(report.filesSeen), bytesSeen: report.bytesSeen, filesSkipped: Int64(report.skipped.count)))
        return copiedFrom
    }

    /// What happened to one file.
    enum FileOutcome: Sendable {
        case staged(read: Int64, uploaded: Int64)
        case duplicate(read: Int64, uploaded: Int64)
        case unchanged
        /// Unchanged by size and time, read again for `--check-unchanged`, and the same.
        case checkedUnchanged(read: Int64)
        /// Unchanged by size and time, but the bytes read now differ from the catalogued ones (or cannot be read):
        /// the original medium may be decaying. Nothing is stored; the archived version stays the file's.
        case suspectedBitRot(detail: String, read: Int64)
        case unreadable(error: String, read: Int64)
        case planned
    }

    func ingest(_ file: SourceFile, sourceID: Int64, gate: SameSizeGate, readers: ReadSlots, details: [String: String] = [:]) async throws -> FileOutcome {
        let path = file.relativePath.catalogText
        await progress.fileStarted(path)
        let modifiedAt = Self.catalogPrecision(file.modificationTime)

        if configuration.dryRun {
            await progress.fileFinished(path, outcome: "planned", size: file.size, skippedBytes: file.size)
            return .planned
        }
        // Exactly as the local index recorded it, and the catalog unchanged since: nothing to ask.
        let verdict = indexVerdict(for: file, path: path)
        if case .trusted(let rowID) = verdict {
            await progress.fileFinished(path, outcome: "unchanged", size: file.size, skippedBytes: file.size)
            indexSaw(file, path: path, rowID: rowID)
            return .unchanged
        }
        // Two files of one size never go at once: the second waits, then finds the first's content by hash. The
        // gate is entered before the catalog is asked, so the answer includes whatever the first one recorded.
        await gate.enter(file.size)
        do {
            let (latest, sizeKnown) = try await lookUps.submit(CatalogLookUp(sourceID: sourceID, path: path, size: file.size)).pair
            let outcome: FileOutcome
            var catalogued: CataloguedFile?
            if let latest, latest.holdsContent(size: file.size), Self.sameTime(latest.modifiedAt, modifiedAt) {
                catalogued = latest
                if isSampledForCheck(path) {
                    let slot = await readers.acquire()
                    defer { slot.release() }
                    outcome = await checkUnchanged(file, path: path, catalogued: latest)
                } else if verdict == .recheck || Self.changedAfterItsModificationTime(file, verdict: verdict) {
                    let slot = await readers.acquire()
                    defer { slot.release() }
                    if await sameContent(file, as: latest) {
                        await progress.fileFinished(path, outcome: "unchanged", size: file.size)
                        outcome = .unchanged
                    } else {
                        // Touched since the index saw it and its time put back: other content behind the same size and time.
                        outcome = try await ingestContent(
                            file, path: path, modifiedAt: modifiedAt, sourceID: sourceID, sizeKnown: true, slot: slot, details: details)
                    }
                } else {
                    await progress.fileFinished(path, outcome: "unchanged", size: file.size, skippedBytes: file.size)
                    outcome = .unchanged
                }
            } else {
                let slot = await readers.acquire()
                defer { slot.release() }
                outcome = try await ingestContent(file, path: path, modifiedAt: modifiedAt, sourceID: sourceID, sizeKnown: sizeKnown, slot: slot, details: details)
            }
            switch outcome {
            case .staged, .duplicate, .unchanged, .checkedUnchanged: indexSaw(file, path: path, rowID: recordedRows.rowID(for: path) ?? catalogued?.id)
            default: break
            }
            await gate.leave(file.size)
            return outcome
        } catch {
            await gate.leave(file.size)
            throw error
        }
    }

    /// `sizeKnown`: the catalog holds content of this file's size, so it is hashed before anything is sent.
    /// `slot` is given back once the bytes are read and stored, before the file waits for the catalog.
    private func ingestContent(
        _ file: SourceFile, path: String, modifiedAt: Date, sourceID: Int64, sizeKnown: Bool, slot: ReadSlot, details: [String: String]
    ) async throws -> FileOutcome {
        var ingested = IngestedFile(
            sourceID: sourceID, path: path, rawPath: file.relativePath.isValidUTF8 ? nil : file.relativePath.bytes,
            name: file.name.catalogText, sizeBytes: file.size, modifiedAt: modifiedAt, kind: .regular)
        var bytesRead: Int64 = 0
        do {
            // The first chunk is read once and serves both the classifier and the upload (no second open).
            var iterator = reader(for: file).makeAsyncIterator()
            let first = try await iterator.next() ?? ByteBuffer()
            let classification = first.readableBytes >= FileClassifier.headLength || Int64(first.readableBytes) == file.size
                ? FileClassifier.classify(head: first.readableBytesView, fileName: file.name.string, fileSize: file.size)
                : try await FileClassifier.classify(fileAt: file.absolutePath)  // chunks smaller than the classifier's head
            ingested.kind = classification.kind
            ingested.details["format"] = classification.format
            ingested.details.merge(details) { $1 }
            Self.noteDiscStructure(&ingested, head: first)
            let chunks = PrefixedChunks(first: first, rest: iterator)

            // Hash first when content of this size exists: a known hash means nothing needs sending.
            if sizeKnown {
                var hasher = ContentHasher(encryption.value?.keys)
                for try await chunk in chunks { hasher.update(chunk) }
                let hash = hasher.finalize()
                bytesRead += file.size
                // The holder may be deleted before the row is written: then the catalog says `needsContent` and
                // the bytes are sent after all, below.
                if try await catalog.holder(ofHash: hash, sourceID: ingested.sourceID) != nil {
                    try sealIfEncrypted(&ingested)
                    let outcome = try await recorder.submit(IngestRecord(file: ingested, hash: hash, stagingKey: nil, pendingID: nil))
                    if outcome != .needsContent {
                        slot.release()
                        // Read without passing through the progress counter: count it as done here.
                        await progress.fileFinished(path, outcome: outcome.isUnchanged ? "unchanged" : "duplicate", size: file.size, skippedBytes: file.size)
                        return outcome.isUnchanged ? .unchanged : .duplicate(read: bytesRead, uploaded: 0)
                    }
                }
            }

            // After hashing, the file is read again to send it; otherwise the chunks already begun go on.
            let source = sizeKnown ? storeSource(reader(for: file), size: file.size, slot: slot) : storeSource(chunks, size: file.size, slot: slot)
            return try await store(ingested, source: source, read: bytesRead + file.size, slot: slot)
        } catch let error as IngestError where error.code == .readFailed || error.code == .cannotOpen || error.code == .sourceChanged {
            // The source could not be read (after the reader's retries): record it and go on with the rest.
            if let pending = try await catalog.pendingUpload(sourceID: sourceID, path: path) {
                try await discard(pending)
            }
            recordedRows.note(rowID: try await catalog.recordUnreadable(ingested, error: error.description))
            await progress.fileFinished(path, outcome: "unreadable", size: file.size)
            logger.warning("unreadable file", metadata: ["ingest.path": "\(path)", "ingest.error": "\(error)"])
            return .unreadable(error: error.description, read: bytesRead)
        }
    }

    /// Uploads the bytes to staging (resuming an interrupted upload of the same path) and catalogues them.
    /// `beforeRecording` may amend the row once the bytes are stored (a disc image learns only then whether it
    /// is clean); it gets the staging key.
    func store(
        _ file: IngestedFile, source: ObjectSource, read bytesRead: Int64, slot: ReadSlot? = nil,
        beforeRecording: (@Sendable (inout IngestedFile, String) async throws -> Void)? = nil
    ) async throws -> FileOutcome {
        var ingested = file
        let path = ingested.path
        let encryption = self.encryption.value
        // Only a multipart upload can be resumed, so only it is announced in `pending_uploads` first; a small
        // file interrupted mid-upload is simply sent again (its partial object never becomes visible).
        let resumable = ingested.sizeBytes > Int64(configuration.putOptions.multipartThreshold)
        let pending = resumable ? try await pendingUpload(for: ingested) : nil
        let stagingKey = pending?.stagingKey ?? Self.newStagingKey(sourceID: ingested.sourceID, encrypted: encryption != nil)
        let journal = try pending.map { try CatalogUploadJournal(catalog: catalog, pending: $0) }
        // The object's name is synced together with the others of its catalog batch, just before the rows commit.
        var options = configuration.putOptions
        options.deferNameSync = true
        var source = source
        var plaintextHash: LockedBox<String?>?
        if let encryption {
            // Encrypted before any byte leaves: staging holds one age file, the catalog its keyed hash.
            let encrypted = try encryption.encrypt(source, plaintextSize: ingested.sizeBytes, stagingKey: stagingKey)
            (source, plaintextHash) = (encrypted.source, encrypted.plaintextHash)
            options.resumedPartsMustMatch = true
        }
        try sealIfEncrypted(&ingested)
        let result: PutResult
        do {
            result = try await staging.put(stagingKey, from: source, options: options, journal: journal)
        } catch let error as ObjectStoreError where error.kind == .sourceChanged && encryption != nil && pending != nil {
            // Its stored parts are not these bytes any more: the file changed since the interrupted attempt.
            // Never re-encrypt other bytes under that object's key; drop it, and the next run starts a new one.
            if let pending { try await discard(pending) }
            throw IngestError(.sourceChanged, path: path, "changed since its interrupted upload, which was discarded; run again to send it anew")
        }
        slot?.release()
        // The crash tests' hook: die between a completed multipart upload and its catalog row.
        if resumable, configuration.testCrashAfterUpload { kill(getpid(), SIGKILL) }
        try await beforeRecording?(&ingested, stagingKey)
        let uploaded = result.bytesUploaded
        var hash = result.sha256
        var stored: (size: Int64, sha256: String)?
        if let plaintextHash {
            guard let keyed = plaintextHash.value else {
                throw IngestError(.archiveFailed, path: path, "the encrypted upload ended before the whole file was read")
            }
            (hash, stored) = (keyed, (result.size, result.sha256))
        }
        let outcome = try await recorder.submit(IngestRecord(file: ingested, hash: hash, stagingKey: stagingKey, pendingID: pending?.id, stored: stored))
        switch outcome {
        case .staged:
            await progress.fileFinished(path, outcome: "staged", size: ingested.sizeBytes)
            return .staged(read: bytesRead, uploaded: uploaded)
        case .duplicate:
            // Another uploader stored the same content meanwhile: this copy is not needed.
            try await staging.delete(stagingKey)
            await progress.fileFinished(path, outcome: "duplicate", size: ingested.sizeBytes)
            return .duplicate(read: bytesRead, uploaded: uploaded)
        case .unchanged:
            try await staging.delete(stagingKey)
            await progress.fileFinished(path, outcome: "unchanged", size: ingested.sizeBytes)
            return .unchanged
        case .needsContent:
            // Only asked for records sent without a staging key; this one had one.
            throw IngestError(.archiveFailed, path: path, "the catalog refused a staged copy")
        }
    }

    /// The bytes to store, counted as read. Into a local store, a file that fits in one chunk gives its read slot
    /// back once it is read, before its fsync: the next file is read while it waits to be durable, the drive still
    /// sees `concurrency` files read at once, and the files waiting (at most the window) hold one chunk each.
    func storeSource<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, size: Int64, slot: ReadSlot) -> ObjectSource
    where Chunks.Element == ByteBuffer {
        var counted = CountingChunks(base: chunks, progress: progress)
        if storesLocally, size <= Int64(configuration.readConfiguration.chunkSize) {
            counted.atEnd = { slot.release() }
        }
        return .stream(counted, length: size)
    }

    /// Staging is a directory on this machine (a spool or `file://` staging): every object ends with an fsync.
    var storesLocally: Bool {
        if case .file = staging.location { true } else { false }
    }

    /// A new object in staging; an encrypted file's ends in `.age` (the archive keeps the extension).
    static func newStagingKey(sourceID: Int64, encrypted: Bool = false) -> String {
        "sources/\(sourceID)/\(UUID().uuidString.lowercased())" + (encrypted ? ".age" : "")
    }

    static func sameTime(_ a: Date?, _ b: Date?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return abs(a.timeIntervalSince(b)) < 0.000_01
    }

    func reader(for file: SourceFile) -> ChunkedFileReader {
        ChunkedFileReader(path: file.absolutePath, expectedSize: file.size, configuration: configuration.readConfiguration)
    }

    /// PostgreSQL keeps microseconds: round the same way so that a re-run compares equal.
    static func catalogPrecision(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
    }
}

extension UploadRun.FileOutcome {
    var isPlanned: Bool {
        if case .planned = self { return true }
        return false
    }
}
