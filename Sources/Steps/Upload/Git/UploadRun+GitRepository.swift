import Catalog
import Foundation
import SourceReading
import SystemIO

extension UploadRun {
    /// Stores a git repository the walker found as one file at its own path (`project/.git`, or the bare
    /// repository's): see ``GitRepositoryArtifact``. The row's `details.git_repository` (`bundle` or `directory`)
    /// tells restore to make the repository again. If not even that can be made, the repository's files are stored
    /// one by one, as any other directory's, and the summary says why.
    func keepWhole(
        _ repository: GitRepositoryEntry, root: RawPath, sourceID: Int64, gate: SameSizeGate, readers: ReadSlots, results: ResultCollector
    ) async throws {
        let absolute = root.appending(repository.relativePath)
        let path = repository.relativePath
        if configuration.dryRun {
            await results.add(.planned, path: path, size: 0)
            return
        }
        // Nothing in the repository is newer than the catalogued file: the same bytes would come out, so neither
        // git nor tar runs (unless this run samples it for --check-unchanged, which makes it again and compares).
        let modified = await (try? blocking { GitRepositoryArtifact.newestModification(in: absolute) }) ?? Date()
        if let latest = try await catalog.latestVersion(sourceID: sourceID, path: path.catalogText),
           latest.holdsContent(size: latest.sizeBytes), Self.sameTime(latest.modifiedAt, Self.catalogPrecision(modified)),
           !isSampledForCheck(path.catalogText) {
            await progress.fileFinished(path.catalogText, outcome: "unchanged", size: latest.sizeBytes, skippedBytes: latest.sizeBytes)
            await results.add(.unchanged, path: path, size: latest.sizeBytes)
            await results.keptRepository()
            return
        }
        let workDirectory = configuration.workDirectory
        let artifact: GitRepositoryArtifact
        do {
            artifact = try await blocking { try GitRepositoryArtifact.build(repository: absolute, workDirectory: workDirectory) }
        } catch {
            await results.note("git repository \(path.catalogText) could not be kept whole (\(error)); its files were stored one by one")
            try await storeFileByFile(repository, root: root, sourceID: sourceID, gate: gate, readers: readers, results: results)
            return
        }
        defer { unlink(artifact.path) }
        if let note = artifact.note { await results.note("git repository \(path.catalogText): \(note)") }
        let standIn = SourceFile.standIn(relativePath: path, absolutePath: RawPath(artifact.path), size: artifact.size, modificationTime: modified)
        var details = ["git_repository": artifact.layout.rawValue, "git_bare": repository.isBare ? "true" : "false"]
        if artifact.layout == .bundle { details["git_refs"] = String(artifact.refs) }
        let outcome = try await ingest(standIn, sourceID: sourceID, gate: gate, readers: readers, details: details)
        await results.add(outcome, path: path, size: artifact.size)
        await results.keptRepository()
    }

    /// The repository's files, as the walk would have stored them without `keepGitRepositoriesWhole`.
    private func storeFileByFile(
        _ repository: GitRepositoryEntry, root: RawPath, sourceID: Int64, gate: SameSizeGate, readers: ReadSlots, results: ResultCollector
    ) async throws {
        let walker = SourceWalker(root: root.appending(repository.relativePath), configuration: SourceWalkerConfiguration())
        try await walker.walk { entry in
            switch entry {
            case .file(let file):
                let placed = file.relocated(under: repository.relativePath)
                let outcome = try await ingest(placed, sourceID: sourceID, gate: gate, readers: readers)
                await results.add(outcome, path: placed.relativePath, size: placed.size)
            case .skipped(let skipped) where skipped.reason.isWalkProblem:
                let placed = repository.relativePath.appending(skipped.relativePath)
                await results.walkProblem(WalkProblem(
                    path: placed.catalogText, rawPath: placed.isValidUTF8 ? nil : placed.bytes, problem: skipped.reason.description))
            case .skipped(let skipped):
                await results.skip("\(repository.relativePath.appending(skipped.relativePath).catalogText): \(skipped.reason)")
            case .directory, .excluded, .gitIgnored, .gitRulesUnreadable, .gitRepository:
                break
            }
        }
    }
}
