import ArchiveFormat
import Catalog
import Foundation
import SystemIO
import NIOCore
import ObjectStore
import PipelineCore
import SourceReading

extension UploadRun {
    /// Ingests the files inside an ISO image, read in place (no mount): through libarchive's ISO 9660 reader, or
    /// through the UDF reader when the ISO 9660 view is incomplete (files only in UDF, files over 4 GiB that ISO
    /// 9660 cannot hold), or as one whole disc image when its UDF cannot be read. Never from an incomplete view.
    ///
    /// An image is one sequential stream, so its members go one at a time. A member whose size matches content
    /// already catalogued is copied to a spool file while it is hashed: if the hash is known nothing is sent,
    /// otherwise the spool file is uploaded, so the disc is still read only once.
    public func run(isoImage imagePath: String, spoolDirectory: String) async throws -> UploadReport {
        let image = RawPath(imagePath)
        switch try await ImageView.of(image) {
        case .iso9660:
            return try await run(members: { (body: (ISOEntry, ISOEntryContents) async throws -> Void) in
                try await ISOImageReader.read(image) { try await body($0, $1) }
            }, imagePath: imagePath, spoolDirectory: spoolDirectory, notes: [], details: [:])
        case .udf(let udf, let note):
            return try await run(members: { (body: (ISOEntry, UDFFileContents) async throws -> Void) in
                try await udf.read { try await body($0, $1) }
            }, imagePath: imagePath, spoolDirectory: spoolDirectory, notes: [note], details: ["read_through": "udf"])
        case .wholeImage(let note):
            return try await runWholeImage(imagePath, note: note)
        }
    }

    /// Ingests the members `members` yields (each entry with its content), one at a time.
    private func run<Contents: AsyncSequence & Sendable>(
        members: ((ISOEntry, Contents) async throws -> Void) async throws -> Void,
        imagePath: String, spoolDirectory: String, notes: [String], details: [String: String]
    ) async throws -> UploadReport where Contents.Element == ByteBuffer, Contents.AsyncIterator: Sendable {
        let started = ContinuousClock.now
        var planFiles = 0
        var planBytes: Int64 = 0
        try await members { entry, _ in
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
            : try await openSource(origin: imagePath)
        try FileManager.default.createDirectory(atPath: spoolDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let excludes = try configuration.excludes.map(ExcludePattern.init)
        let results = ResultCollector()

        try await members { entry, contents in
            if excludes.contains(where: { $0.matches(entry.path, isDirectory: entry.type == .directory) }) {
                if case .file = entry.type { await results.skip("\(entry.path.catalogText): excluded by --exclude") }
                return
            }
            switch entry.type {
            case .file:
                let outcome = try await ingestMember(entry, contents: contents, sourceID: sourceID, spoolDirectory: spoolDirectory, details: details)
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
        return try await finish(results, sourceID: sourceID, started: started, notes: notes)
    }

    /// Stores the whole image as one `disc_image` file, with `note` in the summary and in the row's details.
    private func runWholeImage(_ imagePath: String, note: String) async throws -> UploadReport {
        let started = ContinuousClock.now
        let image = RawPath(imagePath)
        let attributes = try FileManager.default.attributesOfItem(atPath: imagePath)
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        await progress.planned(files: 1, bytes: size)
        let sourceID = configuration.dryRun
            ? -1
            : try await openSource(origin: imagePath)
        let name = image.lastComponent
        let file = IngestedFile(
            sourceID: sourceID, path: name.catalogText, rawPath: name.isValidUTF8 ? nil : name.bytes, name: name.catalogText, sizeBytes: size,
            modifiedAt: (attributes[.modificationDate] as? Date).map(Self.catalogPrecision), kind: .discImage, details: ["note": note])
        let results = ResultCollector()
        let outcome: FileOutcome
        await progress.fileStarted(file.path)
        if configuration.dryRun {
            await progress.fileFinished(file.path, outcome: "planned", size: size, skippedBytes: size)
            outcome = .planned
        } else if let latest = try await catalog.latestVersion(sourceID: sourceID, path: file.path), latest.holdsContent(size: size),
                  Self.sameTime(latest.modifiedAt, file.modifiedAt) {
            await progress.fileFinished(file.path, outcome: "unchanged", size: size, skippedBytes: size)
            outcome = .unchanged
        } else {
            let reader = ChunkedFileReader(path: image, expectedSize: size, configuration: configuration.readConfiguration)
            outcome = try await store(file, source: .stream(CountingChunks(base: reader, progress: progress), length: size), read: size)
        }
        await results.add(outcome, path: name, size: size)
        return try await finish(results, sourceID: sourceID, started: started, notes: [note])
    }

    /// The run's report: closes the source row and prints the summary.
    private func finish(_ results: ResultCollector, sourceID: Int64, started: ContinuousClock.Instant, notes: [String]) async throws -> UploadReport {
        var report = await results.fill(UploadReport())
        report.label = configuration.label
        report.notes = notes
        report.elapsed = ContinuousClock.now - started
        if !configuration.dryRun { _ = try await finishSource(sourceID, report: report) }
        await progress.finished(report)
        return report
    }

    private func ingestMember<Contents: AsyncSequence & Sendable>(
        _ entry: ISOEntry, contents: Contents, sourceID: Int64, spoolDirectory: String, details: [String: String]
    ) async throws -> FileOutcome where Contents.Element == ByteBuffer, Contents.AsyncIterator: Sendable {
        let path = entry.path.catalogText
        await progress.fileStarted(path)
        let modifiedAt = entry.modificationTime.map(Self.catalogPrecision)
        if configuration.dryRun {
            await progress.fileFinished(path, outcome: "planned", size: entry.size, skippedBytes: entry.size)
            return .planned
        }
        if let latest = try await catalog.latestVersion(sourceID: sourceID, path: path), latest.holdsContent(size: entry.size),
           Self.sameTime(latest.modifiedAt, modifiedAt) {
            await progress.fileFinished(path, outcome: "unchanged", size: entry.size, skippedBytes: entry.size)
            return .unchanged
        }
        var ingested = IngestedFile(
            sourceID: sourceID, path: path, rawPath: entry.path.isValidUTF8 ? nil : entry.path.bytes,
            name: entry.path.lastComponent.catalogText, sizeBytes: entry.size, modifiedAt: modifiedAt, kind: .regular)
        ingested.details["iso_member"] = "true"
        ingested.details.merge(details) { $1 }

        var iterator = contents.makeAsyncIterator()
        let first = try await iterator.next() ?? ByteBuffer()
        let classification = FileClassifier.classify(head: first.readableBytesView.prefix(FileClassifier.headLength), fileName: ingested.name, fileSize: entry.size)
        ingested.kind = classification.kind
        ingested.details["format"] = classification.format
        Self.noteDiscStructure(&ingested, head: first)
        let chunks = PrefixedChunks(first: first, rest: iterator)

        if try await catalog.contentOfSizeExists(entry.size) {
            let spool = spoolDirectory + "/" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: spool) }
            let hash = try await Self.spool(CountingChunks(base: chunks, progress: progress), to: spool, hasher: ContentHasher(encryption.value?.keys))
            if try await catalog.holder(ofHash: hash, sourceID: ingested.sourceID) != nil {
                try sealIfEncrypted(&ingested)
                let outcome = try await catalog.record(ingested, hash: hash, stagingKey: nil, pendingID: nil)
                if outcome != .needsContent {  // else the holder was deleted meanwhile: store the bytes after all
                    await progress.fileFinished(path, outcome: outcome.isUnchanged ? "unchanged" : "duplicate", size: entry.size)
                    return outcome.isUnchanged ? .unchanged : .duplicate(read: entry.size, uploaded: 0)
                }
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
        var sealed = file
        try sealIfEncrypted(&sealed)
        let outcome = try await catalog.record(sealed, hash: hash, stagingKey: nil, pendingID: nil)
        if outcome == .needsContent {
            throw IngestError(.archiveFailed, path: path, "hard link to \(target.catalogText), whose content was deleted during this run; run the upload again")
        }
        await progress.fileFinished(path, outcome: "duplicate", size: targetRow.sizeBytes)
        return outcome.isUnchanged ? .unchanged : .duplicate(read: 0, uploaded: 0)
    }

    /// Writes chunks to a new file (flushed to disk) and returns their content hash (SHA-256, or keyed).
    static func spool<Chunks: AsyncSequence>(_ chunks: Chunks, to path: String, hasher: ContentHasher) async throws -> String where Chunks.Element == ByteBuffer {
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw IngestError(.cannotOpen, path: path, "cannot create a spool file")
        }
        defer { try? handle.close() }
        var hasher = hasher
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

extension UploadRun {
    /// A disc's structure files read whole in the first chunk: a DVD title set's IFO gives its chapter starts
    /// (`details.dvd_chapters`), its cells' play order and its titles when it has several (`dvd_cells`,
    /// `dvd_titles`), an AVCHD playlist its recordings (`details.avchd_recordings`), so the transcoder can
    /// use them even after these small files have gone to Deep Archive.
    static func noteDiscStructure(_ ingested: inout IngestedFile, head: ByteBuffer) {
        guard Int64(head.readableBytes) == ingested.sizeBytes else { return }
        if DVDVideoIFO.isTitleSetInformation(path: ingested.path), let layout = DVDVideoIFO.layout(Array(head.readableBytesView)) {
            ingested.details[DVDChapterDetail.key] = DVDChapterDetail.text(layout.chapterStarts)
            if layout.isOutOfSectorOrder {
                ingested.details[DVDCellOrderDetail.key] = DVDCellOrderDetail.text(layout.cells.map { $0.firstSector...$0.lastSector })
            }
            // Several titles in the set (a recorder's recordings): the transcoder makes one file of each.
            if layout.titles.count > 1 {
                ingested.details[DVDTitlesDetail.key] = DVDTitlesDetail.text(layout.titles.map { title in
                    DVDTitlesDetail.Title(number: title.number, cells: title.cells.map { $0.firstSector...$0.lastSector }, chapterStarts: title.chapterStarts)
                })
            }
        }
        if AVCHDPlaylist.isPlaylist(path: ingested.path), let items = AVCHDPlaylist.items(Array(head.readableBytesView)), !items.isEmpty {
            ingested.details[AVCHDRecordingsDetail.key] = AVCHDRecordingsDetail.text(AVCHDPlaylist.recordings(items))
        }
    }
}
