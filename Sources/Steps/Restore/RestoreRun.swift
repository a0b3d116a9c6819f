#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArchiveFormat
import Catalog
import Foundation
import Logging
import NIOCore
import ObjectStore
import PipelineCore
import SourceReading
import SystemIO

/// An archive object still being restored.
public struct PendingObject: Sendable, Hashable {
    public let key: String
    public let files: Int
    public let bytes: Int64
    public let expectedReadyAt: Date?
}

/// What one `uploader restore` did; decides the exit code.
public struct RestoreReport: Sendable {
    public var restored: [String] = []
    public var alreadyPresent: [String] = []
    public var problems: [RestoreProblem] = []
    public var pending: [PendingObject] = []
    public var restoreRequests = 0
    public var bytesDownloaded: Int64 = 0
    public var bytesRestored: Int64 = 0
    public var elapsed: Duration = .zero

    /// 0 everything restored and verified, 1 something was not (listed), 3 still waiting for the archive.
    public var exitCode: Int32 { !problems.isEmpty ? 1 : (!pending.isEmpty ? 3 : 0) }

    public var summaryLines: [String] {
        var lines = ["restored \(restored.count) files (\(Format.bytes(bytesRestored))), \(alreadyPresent.count) already in place, "
            + "\(Format.bytes(bytesDownloaded)) downloaded, \(restoreRequests) restore requests made, in \(String(format: "%.1f s", elapsed.seconds))"]
        for problem in problems { lines.append("NOT RESTORED: \(problem.error)") }
        if !pending.isEmpty {
            let files = pending.reduce(0) { $0 + $1.files }
            let bytes = pending.reduce(Int64(0)) { $0 + $1.bytes }
            let ready = pending.compactMap(\.expectedReadyAt).max()
            lines.append("WAITING FOR THE ARCHIVE: \(pending.count) objects holding \(files) files (\(Format.bytes(bytes))) are being restored"
                + (ready.map { ", expected ready by \(Self.dateText($0))" } ?? "")
                + "; run the same command again then (or add --wait). Nothing is requested twice.")
        }
        return lines
    }

    static func dateText(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// `uploader restore`: finds what the selection needs, asks the archive to restore what is not readable (once per
/// object, recorded in `restore_requests`), and writes every file that is readable under the destination with
/// its path and modification time, each checked against the catalog's SHA-256. Safe to run again at any time:
/// finished files are recognised, partial downloads resume.
public struct RestoreRun: Sendable {
    let catalog: RestoreCatalog
    let archive: any ObjectStore
    let configuration: RestoreConfiguration
    let progress: RestoreProgress
    let logger: Logger

    public init(catalog: RestoreCatalog, archive: any ObjectStore, configuration: RestoreConfiguration, progress: RestoreProgress, logger: Logger) {
        self.catalog = catalog
        self.archive = archive
        self.configuration = configuration
        self.progress = progress
        self.logger = logger
    }

    /// Work directory for whole bundles being unpacked, inside the destination.
    static let workDirectoryName = ".personal-backup-restore"

    public func run() async throws -> RestoreReport {
        let started = ContinuousClock.now
        var report = RestoreReport()
        if let label = configuration.selection.sourceLabel, try await !catalog.sourceExists(label) {
            throw RestoreError(.invalidRequest, "no source is labelled '\(label)' (uploader sources lists them)")
        }
        let pattern: ExcludePattern?
        do {
            pattern = try configuration.pathPattern.map { try ExcludePattern($0) }
        } catch {
            throw RestoreError(.invalidRequest, "--path: \(error)")
        }
        let locations = try await catalog.files(try await resolvedSelection())
        let (plain, problems) = RestorePlanner.plan(locations, pattern: pattern)
        // Before the destination is touched: a wrong identity leaves it as it was.
        let planned = try await attachDecryption(plain, locations: locations)
        let destination = try SafeDestination(root: configuration.destination)
        let writer = FileWriter(destination: destination, killAfterBytes: configuration.testKillAfterBytes, progress: progress)
        report.problems = problems
        guard !planned.isEmpty || !problems.isEmpty else {
            throw RestoreError(.invalidRequest, "nothing matches: no catalogued file fits \(configuration.requestDescription)")
        }

        // Files already in place with the right content need nothing from the archive (and cost nothing).
        var objects: [ObjectJob] = []
        for var object in planned {
            var remaining: [FileJob] = []
            for job in object.files {
                switch await localState(job, destination: destination) {
                case .missing: remaining.append(job)
                case .present:
                    report.alreadyPresent.append(job.path.description)
                    await progress.event("file", ["path": job.path.description, "outcome": "already_present", "size": job.size])
                case .inTheWay(let error): report.problems.append(RestoreProblem(path: job.path.description, error: error))
                }
            }
            object.files = remaining
            if !remaining.isEmpty { objects.append(object) }
        }
        let totalBytes = objects.reduce(Int64(0)) { $0 + $1.neededBytes }
        await progress.planned(files: objects.reduce(0) { $0 + $1.files.count }, bytes: totalBytes)
        await progress.event("planned", [
            "files": objects.reduce(0) { $0 + $1.files.count }, "bytes": totalBytes, "objects": objects.count,
            "already_present": report.alreadyPresent.count, "not_restorable": report.problems.count,
        ])

        var waiting = objects
        while true {
            // Ask for restores where needed; take what is readable now.
            let states = await concurrentMap(waiting, limit: 8) { object in (object, await self.availability(of: object)) }
            var readable: [ObjectJob] = []
            var stillPending: [(ObjectJob, Date?)] = []
            for (object, state) in states {
                switch state {
                case .readable(let requested):
                    if requested { report.restoreRequests += 1 }
                    readable.append(object)
                case .pending(let expected, let requested):
                    if requested { report.restoreRequests += 1 }
                    stillPending.append((object, expected))
                case .unavailable(let error):
                    for job in object.files { report.problems.append(RestoreProblem(path: job.path.description, error: error)) }
                }
            }
            var results = await concurrentMap(readable, limit: max(1, configuration.concurrency)) { object in
                await self.restore(object, destination: destination, writer: writer)
            }
            // The new names are made durable before any of these files is reported restored.
            if let failure = await syncNames(destination) {
                results = results.map { result in
                    var result = result
                    result.files = result.files.map { job, outcome in (job, outcome.flatMap { .failure(failure) }) }
                    return result
                }
            }
            for result in results {
                report.bytesDownloaded += result.downloaded
                for (job, outcome) in result.files {
                    switch outcome {
                    case .success:
                        if let layout = job.location.gitRepository, let problem = await expandRepository(job, layout: layout, destination: destination) {
                            report.problems.append(RestoreProblem(path: job.path.description, error: problem))
                            continue
                        }
                        report.restored.append(job.path.description)
                        report.bytesRestored += job.restoredSize
                        await progress.fileDone()
                        await progress.event("file", ["path": job.path.description, "outcome": "restored", "size": job.size, "sha256": job.sha256])
                    case .failure(let error):
                        // Cut off by Ctrl-C, not failed: the next run resumes it.
                        if Task.isCancelled { continue }
                        report.problems.append(RestoreProblem(path: job.path.description, error: error))
                        await progress.event("file", ["path": job.path.description, "outcome": "failed", "error": error.description])
                    }
                }
            }
            // What was restored is said (and synced) above; the rest is for the next run.
            try Task.checkCancellation()
            waiting = stillPending.map(\.0)
            report.pending = stillPending.map { object, expected in
                PendingObject(key: object.key, files: object.files.count, bytes: object.neededBytes, expectedReadyAt: expected)
            }
            guard configuration.wait, !waiting.isEmpty else { break }
            let expected = stillPending.compactMap(\.1).max()
            await progress.event("waiting", [
                "objects": waiting.count, "files": waiting.reduce(0) { $0 + $1.files.count },
                "bytes": waiting.reduce(Int64(0)) { $0 + $1.neededBytes },
                "expected_ready_at": expected.map(RestoreReport.dateText) ?? "", "next_check_seconds": configuration.pollInterval.seconds,
            ])
            await progress.say("waiting for \(waiting.count) archive objects to be restored"
                + (expected.map { " (expected ready by \(RestoreReport.dateText($0)))" } ?? "")
                + "; checking again in \(Int(configuration.pollInterval.seconds.rounded())) s (Ctrl-C stops; running again continues)")
            try await Task.sleep(for: configuration.pollInterval)
        }
        removeWorkDirectoryIfEmpty(destination)
        report.elapsed = ContinuousClock.now - started
        await progress.clearLine()
        await progress.event("summary", [
            "restored": report.restored.count, "already_present": report.alreadyPresent.count, "bytes_downloaded": report.bytesDownloaded,
            "bytes_restored": report.bytesRestored, "restore_requests": report.restoreRequests,
            "failed": report.problems.map { ["path": $0.path, "error": $0.error.description, "code": $0.error.code.rawValue] as [String: String] },
            "pending": report.pending.map { ["key": $0.key, "files": $0.files, "bytes": $0.bytes, "expected_ready_at": $0.expectedReadyAt.map(RestoreReport.dateText) ?? ""] as [String: any Sendable] },
            "exit_code": Int(report.exitCode), "elapsed_seconds": report.elapsed.seconds,
        ])
        return report
    }

    func syncNames(_ destination: SafeDestination) async -> RestoreError? {
        do {
            try await blocking { try destination.syncNames() }
            return nil
        } catch {
            return error as? RestoreError ?? RestoreError(.localIO, "cannot sync the restored directories: \(error)")
        }
    }

    // MARK: what is already there

    enum LocalState {
        case missing, present
        case inTheWay(RestoreError)
    }

    func localState(_ job: FileJob, destination: SafeDestination) async -> LocalState {
        let overwrite = configuration.overwrite
        return (try? await blocking { () -> LocalState in
            let target: SafeDestination.Target
            do {
                target = try destination.target(job.path, partialTag: String(job.location.fileID))
            } catch {
                return .inTheWay(error as? RestoreError ?? RestoreError(.localIO, "\(job.path): \(error)"))
            }
            defer { target.close() }
            guard let existing = destination.existing(target) else { return .missing }
            if (existing.st_mode & S_IFMT) == S_IFREG, Int64(existing.st_size) == job.restoredSize,
               FileWriter.hashExisting(destination, target, decryption: job.decryption) == job.restoredHash {
                return .present
            }
            if (existing.st_mode & S_IFMT) == S_IFDIR, job.location.gitRepository != nil {
                // A repository restored before (the stored tar was made into this directory).
                return GitRepositoryRestore.looksRestored(destination.root + "/" + job.path.description) ? .present
                    : .inTheWay(RestoreError(.exists, "\(job.path): a directory that is not the repository is in the way"))
            }
            if (existing.st_mode & S_IFMT) == S_IFDIR {
                return .inTheWay(RestoreError(.exists, "\(job.path): a directory of that name is in the way"))
            }
            if overwrite { return .missing }
            return .inTheWay(RestoreError(.exists, "\(job.path): a different file is already there (--overwrite replaces it)"))
        }) ?? .inTheWay(RestoreError(.localIO, "\(job.path): cannot check the destination"))
    }

    // MARK: restore requests

    enum Availability {
        case readable(requested: Bool)
        case pending(expected: Date?, requested: Bool)
        case unavailable(RestoreError)
    }

    /// HEAD first: a readable object (STANDARD, file://, or restored) is used as it is; a restore in flight is
    /// waited for; only an archived object without a restore gets a restore request, which is recorded.
    func availability(of object: ObjectJob) async -> Availability {
        do {
            guard let info = try await archive.head(object.key) else {
                return .unavailable(RestoreError(.objectMissing, "archive object \(object.key) does not exist"))
            }
            if let size = object.size, info.size != size {
                return .unavailable(RestoreError(.objectMissing, "archive object \(object.key) holds \(info.size) bytes, the catalog says \(size)"))
            }
            let recorded = try await catalog.restoreRequests(keys: [object.key]).first
            switch info.restore {
            case .notArchived:
                return .readable(requested: false)
            case .restored(let until):
                if recorded != nil { try await catalog.updateRestoreState(key: object.key, state: "ready", restoredUntil: until) }
                await progress.event("object", ["key": object.key, "state": "restored", "restored_until": until.map(RestoreReport.dateText) ?? ""])
                return .readable(requested: false)
            case .inProgress:
                var expected = recorded?.expectedReadyAt
                if recorded == nil || recorded?.state != "pending" {
                    // Requested by someone else (the archiver's rewrite, another machine): recorded, never asked again.
                    let ready = Date().addingTimeInterval(expectedRestoreTime(storageClass: info.storageClassName, tier: configuration.tier).seconds)
                    try await catalog.recordRestoreRequested(
                        key: object.key, tier: configuration.tier.rawValue, days: configuration.days, storageClass: info.storageClassName,
                        size: info.size, expectedReadyAt: ready, requestedFor: "found in progress by " + configuration.requestDescription)
                    expected = ready
                }
                await progress.event("object", ["key": object.key, "state": "in_progress", "expected_ready_at": expected.map(RestoreReport.dateText) ?? ""])
                return .pending(expected: expected, requested: false)
            case .archived:
                if recorded?.state == "ready" { try await catalog.updateRestoreState(key: object.key, state: "expired", restoredUntil: nil) }
                let outcome = try await archive.requestRestore(object.key, days: configuration.days, tier: configuration.tier)
                let ready = Date().addingTimeInterval(expectedRestoreTime(storageClass: info.storageClassName, tier: configuration.tier).seconds)
                try await catalog.recordRestoreRequested(
                    key: object.key, tier: configuration.tier.rawValue, days: configuration.days, storageClass: info.storageClassName,
                    size: info.size, expectedReadyAt: ready, requestedFor: configuration.requestDescription)
                await progress.event("object", [
                    "key": object.key, "state": "restore_requested", "tier": configuration.tier.rawValue, "days": configuration.days,
                    "bytes": info.size, "expected_ready_at": RestoreReport.dateText(ready), "outcome": "\(outcome)",
                ])
                await progress.say("restore requested: \(object.key) (\(Format.bytes(info.size)), \(configuration.tier.rawValue) tier, expected ready by \(RestoreReport.dateText(ready)))")
                // Some stores (file://, moto) finish at once.
                if let after = try await archive.head(object.key), after.restore.isReadable {
                    if case .restored(let until) = after.restore {
                        try await catalog.updateRestoreState(key: object.key, state: "ready", restoredUntil: until)
                    }
                    return .readable(requested: true)
                }
                return .pending(expected: ready, requested: true)
            }
        } catch let error as RestoreError {
            return .unavailable(error)
        } catch {
            return .unavailable(RestoreError(.objectMissing, "archive object \(object.key): \(error)"))
        }
    }

    // MARK: downloading

    struct ObjectResult: Sendable {
        var downloaded: Int64 = 0
        var files: [(FileJob, Result<Void, RestoreError>)] = []
    }

    func restore(_ object: ObjectJob, destination: SafeDestination, writer: FileWriter) async -> ObjectResult {
        guard let bundle = object.bundle else { return await restoreSingle(object, destination: destination, writer: writer) }
        let needed = object.neededBytes
        let memberRanges = bundle.compression == "none" && object.files.count <= configuration.rangeMemberLimit
            && (object.size.map { needed * 2 < $0 } ?? true)
        if memberRanges { return await restoreMembers(object, destination: destination, writer: writer) }
        return await restoreWholeBundle(object, bundle: bundle, destination: destination, writer: writer)
    }

    /// A file stored alone: streamed straight into its partial file, resuming with a range GET.
    func restoreSingle(_ object: ObjectJob, destination: SafeDestination, writer: FileWriter) async -> ObjectResult {
        var result = ObjectResult()
        let archive = self.archive
        for job in object.files {
            do {
                let target = try await blocking { try destination.target(job.path, partialTag: String(job.location.fileID)) }
                defer { target.close() }
                result.downloaded += try await writer.write(
                    target, size: job.size, sha256: job.sha256, decryption: job.decryption, modifiedAt: job.location.modifiedAt,
                    label: "\(job.path) (\(object.key))"
                ) { offset in
                    try await archive.get(object.key, range: offset > 0 ? ByteRange(first: offset, last: job.size - 1) : nil).body
                }
                result.files.append((job, .success(())))
                if job.location.kind == "disc_image" { await restoreRescueMap(object.key, next: job, destination: destination) }
            } catch {
                result.files.append((job, .failure(Self.describe(error, job: job, key: object.key))))
            }
        }
        return result
    }

    /// A disc image's map of unreadable sectors (STANDARD, beside the image) goes beside the restored image.
    func restoreRescueMap(_ key: String, next job: FileJob, destination: SafeDestination) async {
        guard let info = try? await archive.head(key + ".map"), info.restore.isReadable,
              let bytes = try? await archive.getBytes(key + ".map", limit: 64 << 20) else { return }
        let path = job.path.appendingToName(".map")
        _ = try? await blocking {
            let target = try destination.target(path, partialTag: "\(job.location.fileID)-map")
            defer { target.close() }
            let (descriptor, _) = try destination.openPartial(target, fresh: true)
            try bytes.withUnsafeBytes { raw in try writeAll(descriptor, raw, at: 0) }
            try destination.commit(descriptor, to: target, modifiedAt: job.location.modifiedAt)
        }
        await progress.event("file", ["path": path.description, "outcome": "rescue_map", "size": bytes.count])
    }

    /// A few members of an uncompressed bundle: each member's tar header is read and checked (a regular file of
    /// the recorded size, a safe name), then exactly its data bytes with a range GET.
    func restoreMembers(_ object: ObjectJob, destination: SafeDestination, writer: FileWriter) async -> ObjectResult {
        var result = ObjectResult()
        let archive = self.archive
        for job in object.files {
            do {
                guard let offset = job.location.bundleOffset, offset >= 512 else {
                    throw RestoreError(.objectMissing, "\(job.path): the catalog has no member offset in \(object.key)")
                }
                let header = try await archive.getBytes(object.key, range: ByteRange(first: offset - 512, last: offset - 1), limit: 512)
                result.downloaded += Int64(header.count)
                guard header.count == 512, TarReader.checksumMatches(header) else {
                    throw RestoreError(.checksumMismatch, "\(job.path): no valid tar header before offset \(offset) in \(object.key)")
                }
                var name = String(decoding: header[0..<100].prefix { $0 != 0 }, as: UTF8.self)
                let prefix = String(decoding: header[345..<500].prefix { $0 != 0 }, as: UTF8.self)
                if !prefix.isEmpty { name = prefix + "/" + name }
                let size = TarReader.number(header[124..<136]) ?? -1
                let entry = TarEntry(name: name, size: size, typeFlag: header[156], dataOffset: offset)
                if let problem = LocalBundleExtractor.memberProblem(entry) {
                    throw RestoreError(.unsafePath, "\(job.path): refused: bundle \(object.key) member '\(name)' \(problem)")
                }
                // Sizes of 8 GiB and more live in a pax record; the ustar field then holds a placeholder.
                if size != job.size && size < 0o77777777777 - 1 {
                    throw RestoreError(.checksumMismatch, "\(job.path): the tar header in \(object.key) says \(size) bytes, the catalog \(job.size)")
                }
                let target = try await blocking { try destination.target(job.path, partialTag: String(job.location.fileID)) }
                defer { target.close() }
                result.downloaded += try await writer.write(
                    target, size: job.size, sha256: job.sha256, decryption: job.decryption, modifiedAt: job.location.modifiedAt,
                    label: "\(job.path) (\(object.key))"
                ) { start in
                    try await archive.get(object.key, range: ByteRange(first: offset + start, last: offset + job.size - 1)).body
                }
                result.files.append((job, .success(())))
            } catch {
                result.files.append((job, .failure(Self.describe(error, job: job, key: object.key))))
            }
        }
        return result
    }

    /// A compressed bundle, or many members of one: the object is read as it arrives, through zstd and tar, and
    /// only the wanted members are written (each checked by its own SHA-256 before it is committed; see
    /// `BundleStream`). Nothing of the bundle itself is written to disk. An interrupted restore keeps the members
    /// already committed; the next run fetches the bundle again for the rest.
    func restoreWholeBundle(_ object: ObjectJob, bundle: ObjectJob.Bundle, destination: SafeDestination, writer: FileWriter) async -> ObjectResult {
        var result = ObjectResult()
        var wanted: [Int64: [FileJob]] = [:]
        for job in object.files {
            guard let offset = job.location.bundleOffset else {
                result.files.append((job, .failure(RestoreError(.objectMissing, "\(job.path): the catalog has no member offset in \(object.key)"))))
                continue
            }
            wanted[offset, default: []].append(job)
        }
        guard !wanted.isEmpty else { return result }
        let extractor = LocalBundleExtractor(destination: destination, writer: writer)
        let wantedMembers = wanted
        let compression = bundle.compression
        let key = object.key
        let outcome = await BundleStream.read(key, size: object.size, from: archive) { stream in
            let source: any ChunkReader = compression == "zstd" ? try ZstdFileReader(input: stream) : stream
            return extractor.extract(TarReader(source), bundleKey: key, wanted: wantedMembers)
        }
        result.downloaded += outcome.fetched
        let extracted: [(FileJob, Result<Void, RestoreError>)]
        switch outcome.value {
        case .success(let files): extracted = files
        case .failure(let error):
            // The reader stopped (a damaged bundle, or its stream cut): what it committed before is on disk and
            // found again by the next run; every file of this bundle is reported with the first cause.
            let cause = outcome.fetchError ?? error
            extracted = wanted.values.flatMap { $0 }.map { ($0, .failure(Self.describe(cause, job: $0, key: key))) }
        }
        for (job, fileOutcome) in extracted {
            switch fileOutcome {
            case .success:
                await progress.downloaded(0)
                result.files.append((job, fileOutcome))
            case .failure where outcome.fetchError != nil:
                // A member missing only because the stream was cut is the fetch's failure, not the bundle's.
                result.files.append((job, .failure(Self.describe(outcome.fetchError!, job: job, key: key))))
            case .failure:
                result.files.append((job, fileOutcome))
            }
        }
        return result
    }

    func removeWorkDirectoryIfEmpty(_ destination: SafeDestination) {
        rmdir(destination.root + "/" + Self.workDirectoryName)
    }

    static func describe(_ error: any Error, job: FileJob, key: String) -> RestoreError {
        if let error = error as? RestoreError { return error }
        if let error = error as? ObjectStoreError {
            if error.kind == .invalidObjectState {
                return RestoreError(.notArchived, "\(job.path): \(key) is not readable yet (its restore has not finished)")
            }
            return RestoreError(.objectMissing, "\(job.path): \(error)")
        }
        if let error = error as? FormatError { return RestoreError(.checksumMismatch, "\(job.path): \(key): \(error)") }
        return RestoreError(.localIO, "\(job.path): \(error)")
    }
}
