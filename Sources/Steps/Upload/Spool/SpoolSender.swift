import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import SystemIO

/// The settings of `uploader send`.
public struct SendConfiguration: Sendable {
    /// Files sent at the same time (each a resumable multipart upload above the threshold).
    public var concurrency: Int
    /// How long a claim holds a file without renewal; a killed sender's files are taken over after this.
    public var lease: Duration
    public var putOptions: PutOptions
    /// `--window`/`--timezone` (and `--bwlimit`, which the stores apply): outside every window no file is claimed,
    /// and the state says `paused until HH:MM`.
    public var limits: TransferLimits?
    /// How old a spool file no row names must be before the sweep removes it (see ``SpoolSender/sweepOrphans()``).
    public var orphanAge: Duration = .seconds(3600)
    /// How old a temporary file of a spool writer must be before the sweep removes it.
    public var temporaryFileAge: Duration = .seconds(86_400)

    public init(concurrency: Int = 2, lease: Duration = .seconds(60), putOptions: PutOptions = PutOptions(), limits: TransferLimits? = nil) {
        self.concurrency = concurrency
        self.lease = lease
        self.putOptions = putOptions
        self.limits = limits
    }
}

/// What one pass of the sender did.
public struct SendReport: Sendable {
    public var filesSent = 0
    /// Bytes of the files sent (as stored) and bytes that crossed the network for them (less when parts of an
    /// interrupted send were reused).
    public var bytesSent: Int64 = 0
    public var bytesUploaded: Int64 = 0
    /// Files left behind by an earlier sender after their rows said `staged`, removed now.
    public var filesSwept = 0
    /// Files no row names (an uploader killed between its spool write and its row) and temporary files of killed
    /// writers, removed now.
    public var orphansRemoved = 0
    /// One line per file that was not sent (it stays spooled, or is failed when its spool copy is damaged).
    public var failures: [String] = []
    /// Files still spooled after the pass: held by another sender (alive, or killed and not yet past its lease),
    /// or given up on above.
    public var filesLeft: Int64 = 0

    public init() {}
}

/// One file the sender finished.
public struct SentFile: Sendable {
    public let path: String
    public let key: String
    public let size: Int64
    public let uploaded: Int64
}

/// Drains a spool into staging (`uploader send`): claims spooled rows of this spool with a lease, sends each file
/// with the resumable multipart upload (its journal in the row, so a killed sender's successor sends only the
/// missing parts), checks the bytes that arrived against the catalog, moves the row to `staged` in one guarded
/// statement, and only then deletes the spool file.
public struct SpoolSender: Sendable {
    let catalog: SpoolCatalog
    let spool: SpoolStore
    let staging: any ObjectStore
    let configuration: SendConfiguration
    let logger: Logger
    /// This sender's lease owner (a new one per process).
    public let owner = UUID()
    /// Set by `watch` while sending fails: the recorded state stays `offline` through retries until a file goes.
    let offline = LockedBox(false)

    public init(catalog: SpoolCatalog, spool: SpoolStore, staging: any ObjectStore, configuration: SendConfiguration, logger: Logger) {
        self.catalog = catalog
        self.spool = spool
        self.staging = staging
        self.configuration = configuration
        self.logger = logger
    }

    /// Sends what is spooled now (and what arrives meanwhile) and returns when nothing claimable is left. Files
    /// that fail are given back (claimable again by the next run) and listed; a catalog failure ends the pass.
    public func drain(onSent: @escaping @Sendable (SentFile) -> Void = { _ in }) async throws -> SendReport {
        var report = SendReport()
        report.filesSwept = try await sweep()
        report.orphansRemoved = try await sweepOrphans()
        let held = LockedBox<[Int64: SpooledFile]>([:])
        let given = LockedBox<[Int64]>([])
        let totals = LockedBox(SendReport())
        let senders = max(1, configuration.concurrency)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await heartbeat(held)
                return false
            }
            for _ in 0..<senders {
                group.addTask {
                    while !Task.isCancelled {
                        try await waitForWindow()
                        guard let file = try await catalog.claim(
                            spoolID: spool.spool.id, owner: owner, limit: 1, lease: configuration.lease, excluding: given.value).first else { break }
                        held.withLock { $0[file.fileID] = file }
                        if !offline.value { await recordState("sending", file.path) }
                        defer { held.withLock { $0[file.fileID] = nil } }
                        do {
                            let started = ContinuousClock.now
                            let sent = try await send(file)
                            let seconds = max((ContinuousClock.now - started).seconds, 0.001)
                            totals.withLock {
                                $0.filesSent += 1
                                $0.bytesSent += sent.size
                                $0.bytesUploaded += sent.uploaded
                            }
                            onSent(sent)
                            offline.value = false
                            await recordState("sending", "\(Format.rate(Double(sent.uploaded) / seconds)) on the last file (\(file.path))")
                        } catch let error as CatalogError {
                            throw error
                        } catch {
                            given.withLock { $0.append(file.fileID) }
                            totals.withLock { $0.failures.append("\(file.path): \(Self.oneLine(error))") }
                            logger.warning("not sent", metadata: ["send.path": "\(file.path)", "send.error": "\(error)"])
                            // Given back at once (its journal kept), also when this task is being cancelled (a graceful
                            // stop): the next sender resumes it without waiting for the lease to run out.
                            await Task { try? await catalog.release(file, owner: owner) }.value
                        }
                    }
                    return true
                }
            }
            // The heartbeat runs until the last sender is done.
            var running = senders
            while running > 0, let isSender = try await group.next() {
                if isSender { running -= 1 }
            }
            group.cancelAll()
        }
        let sent = totals.value
        report.filesSent = sent.filesSent
        report.bytesSent = sent.bytesSent
        report.bytesUploaded = sent.bytesUploaded
        report.failures = sent.failures
        report.filesLeft = try await catalog.backlog(spoolID: spool.spool.id).files
        return report
    }

    /// `uploader send --watch`: drains, waits `poll`, drains again, until cancelled (a graceful shutdown: the part in
    /// flight is abandoned, its file given back with its journal, and the next sender sends only what is missing).
    /// A pass with failures (the network is down, the bucket refuses) is retried after an exponential backoff with
    /// jitter, from 1 s up to `maxBackoff`; the sender's state (`sending`, `idle`, `offline since …`) is recorded
    /// in `spools` for `uploader sources`.
    public func watch(
        poll: Duration, maxBackoff: Duration = .seconds(300), onSent: @escaping @Sendable (SentFile) -> Void = { _ in },
        onEvent: @escaping @Sendable (String) -> Void = { _ in }
    ) async {
        var backoff = Duration.seconds(1)
        var offlineSince: Date?
        while !Task.isCancelled {
            var trouble: String?
            do {
                let report = try await drain(onSent: onSent)
                trouble = report.failures.first
            } catch {
                if Task.isCancelled { break }
                trouble = Self.oneLine(error)
            }
            if Task.isCancelled { break }
            if let trouble {
                let since = offlineSince ?? Date()
                if offlineSince == nil { offlineSince = since }
                offline.value = true
                onEvent("not sending (\(trouble)); trying again in \(Int(backoff.seconds)) s")
                await recordState("offline", "since \(Format.timestamp(since)): \(trouble)")
                // Full jitter on the upper half, so that several senders cut off together do not come back in step.
                let wait = backoff / 2 + .milliseconds(Int64.random(in: 0...Int64(backoff.seconds * 500)))
                try? await Task.sleep(for: wait)
                backoff = min(backoff * 2, maxBackoff)
            } else {
                if offlineSince != nil { onEvent("sending again") }
                offlineSince = nil
                offline.value = false
                backoff = .seconds(1)
                await recordState("idle", nil)
                try? await Task.sleep(for: poll)
            }
        }
        await Task { await recordState("stopped", nil) }.value
    }

    /// Returns at once inside a transfer window (or without windows); otherwise records `paused until HH:MM` and
    /// sleeps until the next window opens, claiming nothing meanwhile (so no lease is held through the pause).
    func waitForWindow() async throws {
        guard let limits = configuration.limits, !limits.windows.isAlwaysOpen else { return }
        var announced = false
        while !Task.isCancelled {
            let now = Date()
            if limits.windows.isOpen(at: now, in: limits.timeZone) {
                if announced { await recordState("sending", "transfer window open") }
                return
            }
            let opening = limits.windows.nextOpening(after: now, in: limits.timeZone)
            if !announced {
                announced = true
                await recordState("paused", "until \(Format.wallTime(opening, now: now, timeZone: limits.timeZone)): outside every transfer window")
            }
            try await Task.sleep(for: .milliseconds(Int64(min(max(opening.timeIntervalSince(now), 0.05), 60) * 1000)))
        }
    }

    /// Records what this sender is doing in `spools` (best effort: the catalog may be the thing that is down).
    public func recordState(_ state: String, _ detail: String?) async {
        do {
            try await catalog.recordSenderState(spoolID: spool.spool.id, state: state, detail: detail)
        } catch {
            logger.debug("could not record the sender's state", metadata: ["send.error": "\(error)"])
        }
    }

    /// Sends one claimed file and records it; throws without touching the row's state otherwise (a damaged spool
    /// copy fails the row so that the next upload of the source sends the content again).
    func send(_ file: SpooledFile) async throws -> SentFile {
        let path = spool.spool.path + "/" + file.key
        guard FileManager.default.fileExists(atPath: path) else {
            try await catalog.failDamaged(file, owner: owner, error: "its spool copy \(file.key) is missing; upload the source again")
            throw SpoolError(.spoolFileDamaged, "its spool copy \(file.key) is missing from \(spool.spool.path): marked failed, upload the source again")
        }
        // The journal lives in the row and is written only under this sender's lease.
        let (catalog, owner) = (catalog, owner)
        let journal = try CatalogUploadJournal(savedJSON: file.sendState) { json in
            guard try await catalog.saveSendState(file, owner: owner, json: json) else {
                throw SpoolError(.leaseLost, "another sender took it over (this one's lease ran out)")
            }
        }
        let result = try await staging.put(file.key, from: .file(path), options: configuration.putOptions, journal: journal)
        guard result.size == file.expectedSize, result.sha256 == file.expectedSHA256 else {
            // The spool copy changed since it was read: never let those bytes stand for the original.
            try await staging.delete(file.key)
            try await catalog.failDamaged(file, owner: owner, error: "its spool copy was damaged (SHA-256 \(result.sha256) instead of \(file.expectedSHA256)); upload the source again")
            try await spool.delete(file.key)
            throw SpoolError(.spoolFileDamaged, "its spool copy does not match what was read (SHA-256 \(result.sha256), expected \(file.expectedSHA256)): marked failed, upload the source again")
        }
        if let mapKey = file.rescueMapKey {
            // A disc image's map of unreadable sectors goes with it: the archiver reads it from staging.
            let mapPath = spool.spool.path + "/" + mapKey
            guard FileManager.default.fileExists(atPath: mapPath) else {
                try await staging.delete(file.key)
                try await catalog.failDamaged(file, owner: owner, error: "its map of unreadable sectors \(mapKey) is missing from the spool; upload the source again")
                throw SpoolError(.spoolFileDamaged, "its map of unreadable sectors \(mapKey) is missing from \(spool.spool.path): marked failed, upload the source again")
            }
            _ = try await staging.put(mapKey, from: .file(mapPath), options: configuration.putOptions)
        }
        guard try await catalog.markSent(file, owner: owner) else {
            throw SpoolError(.leaseLost, "another sender took it over (this one's lease ran out); it was left to that sender")
        }
        // Only now, with the row saying `staged`, may the spool copies go.
        try await spool.delete(file.key)
        if let mapKey = file.rescueMapKey { try await spool.delete(mapKey) }
        logger.info("sent", metadata: ["send.path": "\(file.path)", "send.key": "\(file.key)", "send.uploaded": "\(result.bytesUploaded)"])
        return SentFile(path: file.path, key: file.key, size: result.size, uploaded: result.bytesUploaded)
    }

    /// Renews the leases of the files being sent, every third of the lease.
    func heartbeat(_ held: LockedBox<[Int64: SpooledFile]>) async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: configuration.lease / 3)
            let files = Array(held.value.values)
            let kept = try await catalog.renew(files, owner: owner, lease: configuration.lease)
            for file in files where !kept.contains(file.fileID) {
                logger.warning("lost the lease of a file being sent", metadata: ["send.path": "\(file.path)"])
            }
        }
    }

    /// Removes spool files whose rows already left the spool (a sender killed between its row and the delete).
    /// Files no row names are left alone: an uploader may be about to record them.
    func sweep() async throws -> Int {
        var keys: [String] = []
        for try await object in spool.listAll(prefix: "sources/") { keys.append(object.key) }
        guard !keys.isEmpty else { return 0 }
        let waiting = try await catalog.spooledKeys(spoolID: spool.spool.id, among: keys)
        let sent = try await catalog.sentKeys(among: keys.filter { !waiting.contains($0) })
        for key in sent { try await spool.delete(key) }
        return sent.count
    }

    /// Removes what no row will ever name: a file under `sources/` that no catalog row references (in any state:
    /// its content, its image map, a queued delete, an upload under way), left by an uploader killed after its spool
    /// file was renamed into place and before its row was written; and temporary files of killed writers.
    ///
    /// Only files older than `orphanAge` (an hour) count: an uploader running now renames a file into place and
    /// writes its row a moment later (after the batch's directory sync and one transaction), so a file that young
    /// may be about to be named, and removing it would make that row name nothing. An hour is far longer than that
    /// moment, even on a slow NAS. A temporary file is still being written while its writer lives, and a stalled
    /// read (a badly scratched disc retried sector by sector) may not touch it for a long time, so it waits a day.
    /// Keys are never reused (each write gets a new UUID; a resumed multipart upload keeps its key, but its
    /// `pending_uploads` row names it), so an old unnamed file cannot become named later. Its time is still
    /// checked again just before it is removed, so a file put back meanwhile (by hand) is left.
    func sweepOrphans() async throws -> Int {
        let cutoff = Date().addingTimeInterval(-configuration.orphanAge.seconds)
        var old: [String] = []
        for try await object in spool.listAll(prefix: "sources/") where (object.lastModified ?? .distantFuture) < cutoff {
            old.append(object.key)
        }
        var removed = 0
        if !old.isEmpty {
            let referenced = try await catalog.referencedKeys(among: old)
            for key in old where !referenced.contains(key) {
                guard let info = try await spool.head(key), (info.lastModified ?? .distantFuture) < cutoff else { continue }
                try await spool.delete(key)
                logger.notice("removed an orphaned spool file", metadata: ["send.key": "\(key)", "send.size": "\(info.size)"])
                removed += 1
            }
        }
        removed += try await spool.files.removeStaleTemporaryFiles(olderThan: configuration.temporaryFileAge)
        return removed
    }

    static func oneLine(_ error: any Error) -> String {
        String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    }
}
