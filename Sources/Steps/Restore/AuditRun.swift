import ArchiveFormat
import Catalog
import Crypto
import Foundation
import Logging
import NIOCore
import ObjectStore
import PipelineCore
import SystemIO

public struct AuditConfiguration: Sendable {
    public var sourceLabel: String?
    /// Where whole objects are downloaded to be checked (bundles are read member by member from there).
    public var workDirectory: String
    public var concurrency: Int

    public init(sourceLabel: String? = nil, workDirectory: String, concurrency: Int = 4) {
        self.sourceLabel = sourceLabel
        self.workDirectory = workDirectory
        self.concurrency = concurrency
    }
}

/// One source's verdict: safe to destroy the original only when `problems` is empty.
public struct SourceVerdict: Sendable {
    public var label: String
    public var files = 0
    /// Files whose content was read back from the archive and matched its SHA-256.
    public var contentVerified = 0
    /// Files whose archive object was checked by size, class and manifest only (its bytes need a restore).
    public var sizeChecked = 0
    /// Entries the upload deliberately did not store (excluded, ignored by git, links): not a problem, but the
    /// user should know before destroying the original.
    public var entriesNotStored: Int64 = 0
    public var problems: [String] = []

    public var isSafe: Bool { problems.isEmpty }
}

public struct AuditReport: Sendable {
    public var sources: [SourceVerdict] = []
    public var exitCode: Int32 { sources.allSatisfy(\.isSafe) ? 0 : 1 }

    public var summaryLines: [String] {
        var lines: [String] = []
        for source in sources {
            if source.isSafe {
                lines.append("SAFE \(source.label): all \(source.files) files are in the archive (\(source.contentVerified) read back and matched, "
                    + "\(source.sizeChecked) checked by size, class and manifest); you may destroy the original"
                    + (source.entriesNotStored > 0
                        ? " if you do not need the \(source.entriesNotStored) path\(source.entriesNotStored == 1 ? "" : "s") the upload deliberately left out (excluded, ignored by git, links, special files: its summary lists them)"
                        : ""))
            } else {
                lines.append("NOT SAFE \(source.label): keep the original; \(source.problems.count) problem\(source.problems.count == 1 ? "" : "s"):")
                lines += source.problems.prefix(50).map { "  \($0)" }
                if source.problems.count > 50 { lines.append("  … and \(source.problems.count - 50) more (--json lists all)") }
            }
        }
        if sources.isEmpty { lines.append("no sources to audit") }
        return lines
    }
}

/// `uploader audit`: proves, for each source, that every live file's content can be had from the archive bucket
/// alone — the object exists with the recorded size (and class), a bundle member's tar header and offset agree with
/// the catalog and with the manifest beside the bundle, the bytes hash to the recorded SHA-256 wherever they are
/// readable without a restore, and a duplicate resolves (through any chain) to a live archived holder. Nothing in
/// staging counts. The verdict per source is the answer to "may I throw the disc away?".
public struct AuditRun: Sendable {
    let catalog: AuditCatalog
    let archive: any ObjectStore
    let configuration: AuditConfiguration
    let progress: RestoreProgress

    public init(catalog: AuditCatalog, archive: any ObjectStore, configuration: AuditConfiguration, progress: RestoreProgress) {
        self.catalog = catalog
        self.archive = archive
        self.configuration = configuration
        self.progress = progress
    }

    /// What checking one archive object found, for every file stored in it.
    struct ObjectCheck: Sendable {
        var problem: String?
        var contentVerified: Bool
        /// Problems of single members of a bundle, by offset.
        var memberProblems: [Int64: String] = [:]
    }

    public func run() async throws -> AuditReport {
        let sources = try await catalog.sources(label: configuration.sourceLabel)
        if let label = configuration.sourceLabel, sources.isEmpty {
            throw RestoreError(.invalidRequest, "no source is labelled '\(label)' (uploader sources lists them)")
        }
        let reader = try await archiveReader(archive)
        var report = AuditReport()
        var checked: [String: ObjectCheck] = [:]
        for source in sources {
            var verdict = SourceVerdict(label: source.label)
            verdict.entriesNotStored = source.entriesNotStored
            if !source.uploadFinished { verdict.problems.append("the upload of this source did not finish (interrupted or still running): run it again") }
            verdict.problems += source.walkProblems.map { "\($0.path): not read from the original (\($0.problem)); files there may be missing" }
            if source.pendingUploads > 0 { verdict.problems.append("\(source.pendingUploads) upload\(source.pendingUploads == 1 ? "" : "s") begun and not finished") }
            let files = try await catalog.files(sourceID: source.id)
            verdict.files = files.count
            var objects: [String: [AuditedFile]] = [:]
            for file in files {
                if let problem = Self.rowProblem(file) {
                    verdict.problems.append("\(file.path): \(problem)")
                } else if let key = file.archiveKey {
                    objects[key, default: []].append(file)
                }
            }
            let toCheck = objects.filter { checked[$0.key] == nil }
            let results = await concurrentMap(Array(toCheck), limit: max(1, configuration.concurrency)) { entry in
                (entry.key, await self.check(key: entry.key, files: entry.value, reader: reader))
            }
            for (key, result) in results { checked[key] = result }
            for (key, members) in objects {
                guard let result = checked[key] else { continue }
                for file in members {
                    if let problem = result.problem ?? file.bundleOffset.flatMap({ result.memberProblems[$0] }) {
                        verdict.problems.append("\(file.path): \(key): \(problem)")
                    } else if result.contentVerified {
                        verdict.contentVerified += 1
                    } else {
                        verdict.sizeChecked += 1
                    }
                }
            }
            verdict.problems.sort()
            // Objects that Ctrl-C kept from being checked are no verdict on the source: none is said or recorded.
            try Task.checkCancellation()
            await progress.event("source", [
                "label": source.label, "safe": verdict.isSafe, "files": verdict.files, "entries_not_stored": verdict.entriesNotStored, "content_verified": verdict.contentVerified,
                "size_checked": verdict.sizeChecked, "problems": verdict.problems,
            ])
            // Kept for the family pages; the verdict printed here stands even when it cannot be recorded.
            do {
                try await catalog.audits.record(label: source.label, SourceAuditRecord(
                    safe: verdict.isSafe, files: verdict.files, contentVerified: verdict.contentVerified, sizeChecked: verdict.sizeChecked,
                    problems: verdict.problems))
            } catch {
                await progress.event("verdict_not_recorded", ["label": source.label, "error": "\(error)"])
            }
            report.sources.append(verdict)
        }
        await progress.event("summary", ["sources": report.sources.count, "safe": report.sources.filter(\.isSafe).count, "exit_code": Int(report.exitCode)])
        return report
    }

    /// Why a row is not archived, judged by the row holding its content; nil when it claims to be.
    static func rowProblem(_ file: AuditedFile) -> String? {
        if file.state == "unreadable" { return "could not be read from the original (\(file.error ?? "read error")): not archived" }
        guard let holder = file.holderID, let holderState = file.holderState else {
            return "a duplicate whose content no row holds"
        }
        let own = file.state == "duplicate" ? "a duplicate of file \(holder), which is " : ""
        if file.holderDeleted { return own + "deleted: its content may be gone" }
        switch holderState {
        case "archived":
            guard file.archiveKey != nil, file.storedSize != nil else { return own + "archived without an archive key or size" }
            if let bundle = file.bundleID, file.bundleState != "archived" && file.bundleState != "rewriting" {
                return own + "in bundle \(bundle) whose state is \(file.bundleState ?? "unknown")"
            }
            return nil
        case "failed": return own + "failed: \(file.holderError ?? file.error ?? "no error recorded")"
        case "unreadable": return own + "unreadable"
        case "spooled": return own + "read into a spool and not sent yet (run `uploader send`): not archived"
        default: return own + "\(holderState), not archived yet"
        }
    }

    /// HEAD, the manifest beside a bundle, and the bytes when they are readable without a restore.
    func check(key: String, files: [AuditedFile], reader: any ObjectStore) async -> ObjectCheck {
        guard let first = files.first else { return ObjectCheck(problem: nil, contentVerified: false) }
        let isBundle = first.bundleID != nil
        let expectedSize = isBundle ? first.bundleStoredBytes : first.storedSize
        let expectedHash = isBundle ? first.bundleHash : first.storedHash
        do {
            guard let info = try await reader.head(key) else { return ObjectCheck(problem: "missing from the archive", contentVerified: false) }
            guard let expectedSize, info.size == expectedSize else {
                return ObjectCheck(problem: "\(info.size) bytes in the archive, the catalog says \(expectedSize.map(String.init) ?? "nothing")", contentVerified: false)
            }
            if let recorded = first.bundleStorageClass, isBundle, recorded != info.storageClassName {
                return ObjectCheck(problem: "stored as \(info.storageClassName), the catalog says \(recorded)", contentVerified: false)
            }
            var memberProblems: [Int64: String] = [:]
            if isBundle {
                guard let manifestKey = first.bundleManifestKey else { return ObjectCheck(problem: "the bundle has no manifest beside it", contentVerified: false) }
                let manifest = try BundleManifest.decode(try await reader.getBytes(manifestKey))
                if let stored = manifest.storedSHA256, stored != expectedHash { return ObjectCheck(problem: "its manifest records SHA-256 \(stored)", contentVerified: false) }
                let byOffset = Dictionary(manifest.members.map { ($0.offset, $0) }) { first, _ in first }
                for file in files {
                    guard let offset = file.bundleOffset, let member = byOffset[offset] else {
                        memberProblems[file.bundleOffset ?? -1] = "not listed in the bundle's manifest"
                        continue
                    }
                    if member.size != file.storedSize || member.sha256 != file.storedHash {
                        memberProblems[offset] = "the manifest lists \(member.size) bytes with SHA-256 \(member.sha256) at offset \(offset)"
                    }
                }
            }
            guard info.restore.isReadable else { return ObjectCheck(problem: nil, contentVerified: false, memberProblems: memberProblems) }
            let problems = try await readBack(key: key, isBundle: isBundle, compression: first.bundleCompression, expectedHash: expectedHash,
                                               files: files, reader: reader)
            if let whole = problems[-1] { return ObjectCheck(problem: whole, contentVerified: false) }
            return ObjectCheck(problem: nil, contentVerified: true, memberProblems: memberProblems.merging(problems) { first, _ in first })
        } catch {
            return ObjectCheck(problem: "could not be checked: \(error)", contentVerified: false)
        }
    }

    /// Downloads the object (bounded memory: to a local file), checks its SHA-256, and for a bundle each member's tar
    /// header (checksum, size) at its offset and the member's SHA-256. Problems by member offset; -1 is the object.
    func readBack(key: String, isBundle: Bool, compression: String?, expectedHash: String?, files: [AuditedFile],
                  reader: any ObjectStore) async throws -> [Int64: String] {
        let base = configuration.workDirectory + "/audit-" + UUID().uuidString.lowercased()
        defer {
            unlink(base)
            unlink(base + ".tar")
        }
        let (_, digest) = try await saveToFile(try await reader.get(key).body, path: base)
        let wholeProblem = expectedHash.flatMap { digest == $0 ? nil : "its SHA-256 is \(digest), the catalog says \($0)" }
        guard isBundle else { return wholeProblem.map { [-1: $0] } ?? [:] }
        // A damaged bundle is still read member by member, so the report names the files that were hit.
        let tarPath = compression == "zstd" ? base + ".tar" : base
        if compression == "zstd" { try await blocking { try ZstdFile.decompress(base, to: base + ".tar") } }
        let members = files.compactMap { file in file.bundleOffset.map { (offset: $0, size: file.storedSize ?? -1, sha256: file.storedHash ?? "") } }
        let problems = try await blocking { try Self.checkMembers(tarPath: tarPath, members: members) }
        guard let wholeProblem else { return problems }
        return problems.isEmpty ? [-1: wholeProblem] : problems.mapValues { "\($0) (and the bundle's \(wholeProblem))" }
    }

    static func checkMembers(tarPath: String, members: [(offset: Int64, size: Int64, sha256: String)]) throws -> [Int64: String] {
        let descriptor = open(tarPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RestoreError(.localIO, "cannot open \(tarPath): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var problems: [Int64: String] = [:]
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for member in members {
            guard member.offset >= 512 else {
                problems[member.offset] = "offset \(member.offset) leaves no room for a tar header"
                continue
            }
            var header = [UInt8](repeating: 0, count: 512)
            guard pread(descriptor, &header, 512, off_t(member.offset - 512)) == 512 else {
                problems[member.offset] = "no tar header before offset \(member.offset)"
                continue
            }
            if let problem = TarHeaderCheck.problem(header, expectedSize: member.size) {
                problems[member.offset] = "tar header at \(member.offset - 512): \(problem)"
                continue
            }
            var hasher = SHA256()
            var remaining = member.size
            var position = member.offset
            while remaining > 0 {
                let count = pread(descriptor, &buffer, Int(min(Int64(buffer.count), remaining)), off_t(position))
                guard count > 0 else { break }
                buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
                remaining -= Int64(count)
                position += Int64(count)
            }
            let digest = Array(hasher.finalize()).hexString
            if remaining > 0 {
                problems[member.offset] = "the bundle ends \(remaining) bytes before the member does"
            } else if digest != member.sha256 {
                problems[member.offset] = "member bytes have SHA-256 \(digest), the catalog says \(member.sha256)"
            }
        }
        return problems
    }
}

/// The two fields of a ustar header that say whether the member at an offset is the one the catalog means.
enum TarHeaderCheck {
    static func problem(_ header: [UInt8], expectedSize: Int64) -> String? {
        // The checksum: the sum of all header bytes with its own field counted as spaces.
        let recorded = octal(header[148..<156])
        let sum = header.enumerated().reduce(0) { $0 + Int64((148..<156).contains($1.offset) ? 32 : $1.element) }
        guard recorded == sum else { return "checksum \(recorded.map(String.init) ?? "unreadable") does not match (\(sum))" }
        let size: Int64?
        if header[124] & 0x80 != 0 {
            // GNU base-256 for sizes of 8 GiB and more.
            size = header[125..<136].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        } else {
            size = octal(header[124..<136])
        }
        guard size == expectedSize else { return "size \(size.map(String.init) ?? "unreadable"), the catalog says \(expectedSize)" }
        return nil
    }

    static func octal(_ field: ArraySlice<UInt8>) -> Int64? {
        let digits = field.drop { $0 == 32 }.prefix { $0 != 0 && $0 != 32 }
        guard !digits.isEmpty else { return nil }
        var value: Int64 = 0
        for digit in digits {
            guard digit >= 48 && digit <= 55 else { return nil }
            value = value * 8 + Int64(digit - 48)
        }
        return value
    }
}
