import Catalog
import Foundation
import Logging
import SourceReading
import SystemIO

/// The local index during one run: what the previous run left (if it can be believed) and what this run vouches for.
final class UploadIndexSession: Sendable {
    let file: String
    /// Nil: there is nothing to consult (no index, or one that must be ignored); every file asks the catalog.
    let policy: UploadIndexPolicy?
    /// One line for the summary: how the index was used, or why not.
    let status: String
    let startToken: UploadIndexToken
    let runStarted: Int64
    let root: [UInt8]
    let fileSystem: (id: UInt64, type: String)
    let seen = LockedBox<[String: UploadIndexEntry]>([:])
    let hits = LockedBox(0)
    let rechecked = LockedBox<(files: Int, bytes: Int64)>((0, 0))
    /// The catalog refused to close this run's snapshot as a copy of the index's: the index must be written again
    /// (with this run's snapshot) even if nothing else changed, or every later run would be refused the same way.
    let snapshotCopyRefused = LockedBox(false)

    /// This run found every file of the index it read exactly as recorded (each one trusted), and recorded no other.
    var foundExactlyTheIndex: Bool {
        guard let recorded = policy?.index else { return false }
        return hits.value == recorded.entries.count && seen.value == recorded.entries
    }

    init(file: String, policy: UploadIndexPolicy?, status: String, startToken: UploadIndexToken, runStarted: Int64, root: [UInt8],
         fileSystem: (id: UInt64, type: String)) {
        self.file = file
        self.policy = policy
        self.status = status
        self.startToken = startToken
        self.runStarted = runStarted
        self.root = root
        self.fileSystem = fileSystem
    }

    /// Whether an index read from disk may be consulted, and how far: nil with the reason when it must be ignored.
    static func policy(
        for index: UploadIndex?, sourceID: Int64, token: UploadIndexToken, root: [UInt8], fileSystem: (id: UInt64, type: String), now: Int64
    ) -> (policy: UploadIndexPolicy?, status: String) {
        guard let index else { return (nil, "no usable local index (none yet, or unreadable): every file checked against the catalog") }
        let header = index.header
        guard header.sourceID == sourceID, header.token.catalogIdentity == token.catalogIdentity else {
            return (nil, "the local index belongs to another source or catalog: ignored")
        }
        guard header.root == root, header.fileSystemID == fileSystem.id, header.fileSystemType == fileSystem.type else {
            return (nil, "the local index was made for another directory or file system: ignored")
        }
        guard header.written <= now, header.runStarted <= header.written else {
            return (nil, "the local index was written in the future (the clock went back): ignored")
        }
        guard UploadIndexStore.localFileSystemTypes.contains(fileSystem.type) else {
            return (UploadIndexPolicy(index: index, trustable: false),
                    "the source is on a file system whose times may come from another clock: the local index is not trusted")
        }
        guard header.token == token else {
            return (UploadIndexPolicy(index: index, trustable: false),
                    "the catalog changed since the local index was written (rows added, deleted or failed): every file checked against it")
        }
        return (UploadIndexPolicy(index: index, trustable: true), "local index used")
    }
}

extension UploadRun {
    /// Reads the source's index after the source is open. `runStarted` was taken before the run's first `lstat`.
    /// Never fails: anything wrong with the index means asking the catalog about every file.
    func openIndex(sourceID: Int64, root: String, runStarted: Int64) async throws {
        guard let directory = configuration.indexDirectory else { return }
        guard let (token, _) = try await catalog.uploadIndexToken(sourceID: sourceID),
              let file = UploadIndexStore(directory: directory).path(sourceID: sourceID, catalogIdentity: token.catalogIdentity),
              let fileSystem = UploadIndexStore.fileSystem(of: root)
        else { return }
        let rootBytes = Array(root.utf8)
        var (policy, status): (UploadIndexPolicy?, String) = (nil, "local index not read (--no-index): every file checked against the catalog")
        if configuration.useLocalIndex {
            let bytes = (try? await blocking { UploadIndexStore.read(file) ?? [] }) ?? []
            let index = UploadIndex.decode(bytes)
            (policy, status) = UploadIndexSession.policy(
                for: index, sourceID: sourceID, token: token, root: rootBytes, fileSystem: fileSystem, now: UploadIndexStore.now())
        }
        index.value = UploadIndexSession(
            file: file, policy: policy, status: status, startToken: token, runStarted: runStarted, root: rootBytes, fileSystem: fileSystem)
    }

    /// What the index says about `file` (`.unknown` without one, and for a file this run samples for
    /// `--check-unchanged`, which always asks the catalog).
    func indexVerdict(for file: SourceFile, path: String) -> UploadIndexVerdict {
        guard let policy = index.value?.policy, !isSampledForCheck(path) else { return .unknown }
        let verdict = policy.verdict(
            device: file.device, inode: file.inode, size: file.size, modified: file.modificationNanoseconds, changed: file.changeNanoseconds, path: path)
        if case .trusted = verdict { index.value?.hits.withLock { $0 += 1 } }
        return verdict
    }

    /// A file the index cannot vouch for (none, `--no-index`, or not in it) whose inode changed well after its
    /// modification time: its time may have been put back after a rewrite (`touch -r`, a restore with times kept),
    /// which the catalog's size-and-time check cannot see. It is read and compared, and only then recorded in the
    /// index; otherwise a run without the index would call the rewrite unchanged and the index it writes would vouch
    /// for it from then on. A file written the ordinary way changes its inode when it is modified, and costs nothing.
    static func changedAfterItsModificationTime(_ file: SourceFile, verdict: UploadIndexVerdict) -> Bool {
        guard verdict == .unknown, file.changeNanoseconds != 0 else { return false }
        return file.changeNanoseconds - file.modificationNanoseconds >= UploadIndexPolicy.granularityNanoseconds
    }

    /// `file` is catalogued as `rowID`, which holds its content: the next run may skip it while nothing changes.
    func indexSaw(_ file: SourceFile, path: String, rowID: Int64?) {
        guard let session = index.value, let rowID, file.device != 0, file.inode != 0, file.changeNanoseconds != 0 else { return }
        session.seen.withLock {
            $0[path] = UploadIndexEntry(
                device: file.device, inode: file.inode, size: file.size, modified: file.modificationNanoseconds, changed: file.changeNanoseconds, rowID: rowID)
        }
    }

    /// A file the index asks to re-check, unchanged by size and time in the catalog: is its content still the
    /// catalogued one? (False too when it cannot be read: the ordinary ingest then reads it and records what it finds.)
    func sameContent(_ file: SourceFile, as catalogued: CataloguedFile) async -> Bool {
        let (result, read) = await contentHash(of: file)
        index.value?.rechecked.withLock { $0 = ($0.files + 1, $0.bytes + read) }
        guard case .success(let digest) = result else { return false }
        return digest == catalogued.hash
    }

    /// Closes the run's snapshot as a copy of the one the local index was made after, when the run found exactly the
    /// index's files, every one trusted, and nothing else (no other path, no walk problem): the catalog then needs
    /// neither the seen paths nor a look-up per path. The catalog checks the rest (``SnapshotCatalog/finishAsCopy``).
    /// Returns the snapshot copied; nil when this does not apply or the catalog refuses (the caller then finishes the
    /// snapshot the ordinary way).
    func finishSnapshotAsCopy(_ handle: SnapshotHandle, sourceID: Int64, report: UploadReport) async throws -> Int? {
        guard let session = index.value, let policy = session.policy, policy.trustable, report.walkProblems.isEmpty else { return nil }
        let recorded = policy.index
        let parent = recorded.header.snapshotNumber
        guard parent > 0, parent < handle.number, session.foundExactlyTheIndex,
              report.seenPaths.count == recorded.entries.count, report.seenPaths.allSatisfy({ recorded.entries[$0] != nil })
        else { return nil }
        let copied = try await catalog.snapshots.finishAsCopy(
            snapshotID: handle.id, sourceID: sourceID, parent: Int(parent), files: recorded.entries.count, token: recorded.header.token,
            bytesUploaded: report.bytesUploaded)
        if !copied { session.snapshotCopyRefused.value = true }
        return copied ? Int(parent) : nil
    }

    /// After the run's catalog writes and its snapshot: the index for the next run, if the catalog is exactly as
    /// this run left it (nobody else added, deleted or failed a row of the source meanwhile); otherwise the old
    /// index is removed and the next run asks the catalog about everything. Never fails the run.
    func saveIndex(sourceID: Int64, into report: inout UploadReport) async {
        guard let session = index.value else { return }
        report.indexHits = session.hits.value
        (report.indexRechecked, report.bytesRead) = (session.rechecked.value.files, report.bytesRead + session.rechecked.value.bytes)
        report.indexStatus = session.status
        do {
            let start = session.startToken
            guard let (end, above) = try await catalog.uploadIndexToken(sourceID: sourceID, rowsAbove: start.maxRowID) else { return }
            let mine = recordedRows.count(above: start.maxRowID)
            guard end.catalogIdentity == start.catalogIdentity, end.epoch == start.epoch, above == mine, end.rows == start.rows + mine else {
                UploadIndexStore.remove(session.file)
                report.indexStatus = session.status + "; the catalog of this source changed during the run (another program wrote to it): no index kept"
                return
            }
            // Every file was trusted exactly as the index on disk records it, and the catalog is as it says (its
            // snapshot still the one a run may copy): writing it again (two fsyncs) would change only its times and
            // snapshot number, and the next run would trust the same files and copy the same snapshot.
            if let previous = session.policy?.index, previous.header.token == end, session.foundExactlyTheIndex,
               !session.snapshotCopyRefused.value {
                return
            }
            let header = UploadIndexHeader(
                sourceID: sourceID, token: end, root: session.root, fileSystemID: session.fileSystem.id, fileSystemType: session.fileSystem.type,
                runStarted: session.runStarted, written: UploadIndexStore.now(), snapshotNumber: Int64(snapshot.value?.number ?? 0))
            let bytes = UploadIndex(header: header, entries: session.seen.value).encoded()
            let file = session.file
            try await blocking { try UploadIndexStore.write(bytes, to: file) }
        } catch {
            UploadIndexStore.remove(session.file)
            logger.warning("the local index could not be written; the next run asks the catalog about every file", metadata: ["index.error": "\(error)"])
        }
    }
}
