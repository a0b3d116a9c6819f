import Catalog
import Foundation
import PipelineCore
import SourceReading

/// Gathers per-file outcomes from concurrent tasks.
actor ResultCollector {
    private var report = UploadReport()

    func add(_ outcome: UploadRun.FileOutcome, path: RawPath, size: Int64) {
        if !outcome.isPlanned { report.seenPaths.append(path.catalogText) }
        report.filesSeen += 1
        report.bytesSeen += size
        switch outcome {
        case .staged(let read, let uploaded):
            report.filesStaged += 1
            report.bytesRead += read
            report.bytesUploaded += uploaded
        case .duplicate(let read, let uploaded):
            report.duplicates += 1
            report.bytesRead += read
            report.bytesUploaded += uploaded
            report.bytesSavedByDedupe += max(0, size - uploaded)
        case .unchanged, .planned:
            report.unchanged += outcome.isPlanned ? 0 : 1
        case .checkedUnchanged(let read):
            report.unchanged += 1
            report.unchangedChecked += 1
            report.bytesRead += read
        case .suspectedBitRot(let detail, let read):
            report.bytesRead += read
            report.suspectedBitRot.append(.init(path: path.catalogText, error: detail))
        case .unreadable(let error, let read):
            report.bytesRead += read
            report.unreadable.append(.init(path: path.catalogText, error: error))
        }
    }

    func skip(_ description: String) {
        report.skipped.append(description)
    }

    func gitIgnored(_ ignored: GitIgnoredEntry) {
        report.gitIgnoredFiles += ignored.files
        report.gitIgnoredBytes += ignored.bytes
        let what = ignored.isDirectory ? "/: ignored by git (\(ignored.files) file\(ignored.files == 1 ? "" : "s"), \(Format.bytes(ignored.bytes)))" : ": ignored by git"
        report.skipped.append(ignored.relativePath.catalogText + what)
    }

    func note(_ text: String) {
        report.notes.append(text)
    }

    func keptRepository() {
        report.gitRepositories += 1
    }

    func walkProblem(_ problem: WalkProblem) {
        report.walkProblems.append(problem)
    }

    func fill(_ base: UploadReport) -> UploadReport {
        var result = report
        result.label = base.label
        result.unreadable.sort { $0.path < $1.path }
        result.suspectedBitRot.sort { $0.path < $1.path }
        return result
    }
}
