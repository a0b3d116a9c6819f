import Catalog
import Foundation
import PipelineCore

/// What one `uploader upload` run did; printed as the final summary and decides the exit code.
public struct UploadReport: Sendable {
    public struct Unreadable: Sendable, Hashable {
        public let path: String
        public let error: String
    }

    public var label: String = ""
    public var filesSeen = 0
    public var bytesSeen: Int64 = 0
    /// Bytes read from the source (hashing and uploading; a file hashed and then uploaded counts twice).
    public var bytesRead: Int64 = 0
    /// Bytes sent to staging in this run (parts already stored by an interrupted run are not sent again).
    public var bytesUploaded: Int64 = 0
    /// Bytes not sent because their content was already stored.
    public var bytesSavedByDedupe: Int64 = 0
    public var filesStaged = 0
    public var duplicates = 0
    /// Files whose path, size and modification time were catalogued already: not read at all.
    public var unchanged = 0
    public var unreadable: [Unreadable] = []
    /// Unchanged files read again (`--check-unchanged`) that matched, and those whose bytes differ or cannot be
    /// read now although their size and time did not change: possible bit rot on the original (nothing stored).
    public var unchangedChecked = 0
    public var suspectedBitRot: [Unreadable] = []
    /// Symlinks, sockets, devices and excluded entries: deliberately not stored, listed.
    public var skipped: [String] = []
    /// Files left out because git ignores them (in git work trees, unless `--no-gitignore`), and their bytes.
    public var gitIgnoredFiles = 0
    public var gitIgnoredBytes: Int64 = 0
    /// Git repositories stored whole, each as one file (a bundle and the rest of `.git`).
    public var gitRepositories = 0
    /// How the source was read when that matters to the user (an image read through UDF, or kept whole).
    public var notes: [String] = []
    /// Directories that could not be opened or listed to the end, entries that could not be inspected: what lies
    /// there was not seen at all (recorded in `source_problems`).
    public var walkProblems: [WalkProblem] = []
    public var elapsed: Duration = .zero
    /// Every path the run found and catalogued (the run's snapshot is made of them).
    public var seenPaths: [String] = []
    /// The local index (`Upload/LocalIndex`): files it knew unchanged without asking the catalog, files it had
    /// re-read because they were touched with their time put back (or too soon after the last run to tell), and
    /// how it was used or why not (nil: no index directory, as in a dry run).
    public var indexHits = 0
    public var indexRechecked = 0
    public var indexStatus: String?
    /// The run found exactly what the index recorded after this snapshot, and its own snapshot was closed as a copy
    /// of it (no path sent to the catalog); nil when the snapshot was compared path by path.
    public var snapshotCopiedFrom: Int?

    /// Everything there is was seen, and everything found was stored (or was stored already).
    public var isComplete: Bool { unreadable.isEmpty && walkProblems.isEmpty && suspectedBitRot.isEmpty }

    public var summaryLines: [String] {
        var lines = [
            "source \"\(label)\": \(filesSeen) files, \(Format.bytes(bytesSeen)) seen in \(elapsed.secondsText)",
            "  staged \(filesStaged), duplicates \(duplicates), unchanged since the last run \(unchanged), unreadable \(unreadable.count), not stored (skipped) \(skipped.count), not read (walk problems) \(walkProblems.count)",
            "  read \(Format.bytes(bytesRead)), uploaded \(Format.bytes(bytesUploaded)), saved by dedupe \(Format.bytes(bytesSavedByDedupe))",
        ]
        if gitRepositories > 0 {
            lines.append("  git repositories kept whole (one file each: a verified bundle and the rest of .git): \(gitRepositories)")
        }
        if gitIgnoredFiles > 0 {
            lines.append("  left out because git ignores them: \(gitIgnoredFiles) files, \(Format.bytes(gitIgnoredBytes)) (--no-gitignore keeps them)")
        }
        if let indexStatus {
            lines.append("  local index: \(indexHits) known unchanged without the catalog, \(indexRechecked) re-read to compare (\(indexStatus))"
                + (snapshotCopiedFrom.map { "; nothing changed since snapshot \($0)" } ?? ""))
        }
        lines += notes.map { "  note: \($0)" }
        if !skipped.isEmpty {
            lines.append("not stored:")
            lines += skipped.map { "  \($0)" }
        }
        if !unreadable.isEmpty {
            lines.append("UNREADABLE (recorded as unreadable, not stored):")
            lines += unreadable.map { "  \($0.path): \($0.error)" }
        }
        if unchangedChecked > 0 || !suspectedBitRot.isEmpty {
            lines.append("  unchanged files read again (--check-unchanged): \(unchangedChecked + suspectedBitRot.count), \(suspectedBitRot.count) differ")
        }
        if !suspectedBitRot.isEmpty {
            lines.append("POSSIBLE BIT ROT on the original (nothing stored; the archived copy stays the file's; keep the archive, check the medium):")
            lines += suspectedBitRot.map { "  \($0.path): \($0.error)" }
        }
        if !walkProblems.isEmpty {
            lines.append("INCOMPLETE: these paths could not be read, so files in or under them may be missing from the archive:")
            lines += walkProblems.map { "  \($0.line)" }
        }
        return lines
    }
}

extension Duration {
    var secondsText: String { String(format: "%.1f s", seconds) }
}
