import Catalog
import Foundation
import NIOCore
import ObjectStore
import PipelineCore

extension UploadRun {
    /// Ingests the files inside an ISO image, read in place through libarchive (no mount).
    ///
    /// An image is one sequential stream, so its members go one at a time. A member whose size matches content
    /// already catalogued is copied to a spool file while it is hashed: if the hash is known nothing is sent,
    /// otherwise the spool file is uploaded, so the disc is still read only once.
    public func run(isoImage imagePath: String, spoolDirectory: String) async throws -> UploadReport {
        let started = ContinuousClock.now
        var planFiles = 0
        var planBytes: Int64 = 0
        try await ISOImageReader.read(RawPath(imagePath)) { entry, _ in
            switch entry.type {
            case .file, .hardlink:
                planFiles += 1
                planBytes += entry.size
            case .directory, .symlink, .other:
                break
            }
        }
        await progress.planned(files: planFiles, bytes: planBytes)

        let sourceID = configuration.dryRun
            ? -1
            : try await catalog.openSource(label: configuration.label, metadata: configuration.metadata, note: configuration.note, origin: imagePath)
        try FileManager.default.createDirectory(atPath: spoolDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let excludes = try configuration.excludes.map(ExcludePattern.init)
        let results = ResultCollector()

        try await ISOImageReader.read(RawPath(imagePath)) { entry, contents in
            if excludes.contains(where: { $0.matches(entry.path, isDirectory: entry.type == .directory) }) {
                if case .file = entry.type { await results.skip("\(entry.path.catalogText): excluded by --exclude") }
                return
            }
            switch entry.type {
            case .file:
                let outcome = try await ingestMember(entry, contents: contents, sourceID: sourceID, spoolDirectory: spoolDirectory)
                await results.add(outcome, path: entry.path, size: entry.size)
            case .hardlink(let target):
                let outcome = try await ingestHardLink(entry, target: target, sourceID: sourceID)
                await results.add(outcome, path: entry.path, size: entry.size)
            case .symlink(let target):
                await results.skip("\(entry.path.catalogText): symbolic link to \(target.catalogText)")
            case .other(let mode):
                await results.skip("\(entry.path.catalogText): special file (mode \(String(mode, radix: 8)))")
            case .directory:
                break
            }
        }

        var report = await results.fill(UploadReport())
        report.label = configuration.label
        report.elapsed = ContinuousClock.now - started
        if !configuration.dryRun { try await finishSource(sourceID, report: report) }
        await progress.finished(report)
        return report
    }

    private func ingestMember(_ entry: ISOEntry, contents: ISOEntryContents, sourceID: Int64, spoolDirectory: String) async throws -> FileOutcome {
        let path = entry.path.catalogText
        await progress.fileStarted(path)
        let modifiedAt = entry.modificationTime.map(Self.catalogPrecision)
        if configuration.dryRun {
            await progress.fileFinished(path, outcome: "planned", size: entry.size, skippedBytes: entry.size)
            return .planned
        }
        if let latest = try await catalog.latestVersion(sourceID: sourceID, path: path), latest.state != .unreadable,
           latest.sizeBytes == entry.size, Self.sameTime(latest.modifiedAt, modifiedAt) {
            await progress.fileFinished(path, outcome: "unchanged", size: entry.size, skippedBytes: entry.size)
            return .unchanged
        }
        var ingested = IngestedFile(
            sourceID: sourceID, path: path, rawPath: entry.path.isValidUTF8 ? nil : entry.path.bytes,
            name: entry.path.lastComponent.catalogText, sizeBytes: entry.size, modifiedAt: modifiedAt, kind: .regular)
        ingested.details["iso_member"] = "true"

        var iterator = contents.makeAsyncIterator()
        let first = try await iterator.next() ?? ByteBuffer()
        let classification = FileClassifier.classify(head: first.readableBytesView.prefix(FileClassifier.headLength), fileName: ingested.name, fileSize: entry.size)
        ingested.kind = classification.kind
        ingested.details["format"] = classification.format
        let chunks = PrefixedChunks(first: first, rest: iterator)

        if try await catalog.contentOfSizeExists(entry.size) {
            let spool = spoolDirectory + "/" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: spool) }
            let hash = try await Self.spool(CountingChunks(base: chunks, progress: progress), to: spool)
            if try await catalog.holder(ofHash: hash) != nil {
                let outcome = try await catalog.record(ingested, hash: hash, stagingKey: nil, pendingID: nil)
                await progress.fileFinished(path, outcome: outcome.isUnchanged ? "unchanged" : "duplicate", size: entry.size)
                return outcome.isUnchanged ? .unchanged : .duplicate(read: entry.size, uploaded: 0)
            }
            return try await store(ingested, source: .file(spool), read: entry.size)
        }
        return try await store(ingested, source: .stream(CountingChunks(base: chunks, progress: progress), length: entry.size), read: entry.size)
    }

    /// A second name for content the image already holds: recorded as a duplicate of the first name's row.
    private func ingestHardLink(_ entry: ISOEntry, target: RawPath, sourceID: Int64) async throws -> FileOutcome {
        let path = entry.path.catalogText
        guard !configuration.dryRun else { return .planned }
        guard let targetRow = try await catalog.latestVersion(sourceID: sourceID, path: target.catalogText), let hash = targetRow.hash else {
            throw IngestError(.archiveFailed, path: path, "hard link to \(target.catalogText), which was not catalogued")
        }
        let file = IngestedFile(
            sourceID: sourceID, path: path, rawPath: entry.path.isValidUTF8 ? nil : entry.path.bytes,
            name: entry.path.lastComponent.catalogText, sizeBytes: targetRow.sizeBytes,
            modifiedAt: entry.modificationTime.map(Self.catalogPrecision), kind: .regular, details: ["hard_link_to": target.catalogText])
        let outcome = try await catalog.record(file, hash: hash, stagingKey: nil, pendingID: nil)
        await progress.fileFinished(path, outcome: "duplicate", size: targetRow.sizeBytes)
        return outcome.isUnchanged ? .unchanged : .duplicate(read: 0, uploaded: 0)
    }

    /// Writes chunks to a new file (flushed to disk) and returns their SHA-256.
    static func spool<Chunks: AsyncSequence>(_ chunks: Chunks, to path: String) async throws -> String where Chunks.Element == ByteBuffer {
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw IngestError(.cannotOpen, path: path, "cannot create a spool file")
        }
        defer { try? handle.close() }
        var hasher = SHA256Stream()
        for try await chunk in chunks {
            hasher.update(chunk)
            try handle.write(contentsOf: Data(chunk.readableBytesView))
        }
        try handle.synchronize()
        return hasher.finalize()
    }
}

extension CatalogOutcome {
    var isUnchanged: Bool {
        if case .unchanged = self { return true }
        return false
    }
}

/// A first chunk already read (to classify the content), then the rest of the stream.
struct PrefixedChunks<Rest: AsyncIteratorProtocol & Sendable>: AsyncSequence, Sendable where Rest.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let first: ByteBuffer
    let rest: Rest

    struct AsyncIterator: AsyncIteratorProtocol {
        var first: ByteBuffer?
        var rest: Rest

        mutating func next() async throws -> ByteBuffer? {
            if let chunk = first {
                first = nil
                if chunk.readableBytes > 0 { return chunk }
            }
            return try await rest.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(first: first, rest: rest) }
}
