import Foundation
import Catalog
import NIOCore
import PipelineCore

/// Where an upload run reports progress: a live line on a terminal, or JSON lines for programs.
public actor UploadProgress {
    public enum Style: Sendable { case terminal, jsonLines, silent }

    private let style: Style
    private let output: @Sendable (String) -> Void
    private var totalFiles = 0
    private var totalBytes: Int64 = 0
    private var filesDone = 0
    private var bytesDone: Int64 = 0
    private var current = ""
    private let started = ContinuousClock.now
    private var lastDraw = ContinuousClock.now - .seconds(1)
    /// (time, bytes done) samples of the last seconds: the rate and ETA come from this window, not the average.
    private var samples: [(ContinuousClock.Instant, Int64)] = []
    /// One formatter for the whole run: creating one per event cost more CPU than storing a small file.
    private let timeFormatter = ISO8601DateFormatter()
    /// The last timestamp written and its second: the format has whole seconds, and ICU's formatting was a twentieth
    /// of an unchanged second run's CPU when done for every file.
    private var stampSecond = Int.min
    private var stamp = ""

    /// The live line goes to standard error; JSON lines to standard output.
    public static func standard(style: Style) -> UploadProgress {
        UploadProgress(style: style) { text in
            let handle = style == .terminal ? FileHandle.standardError : FileHandle.standardOutput
            handle.write(Data(text.utf8))
        }
    }

    public init(style: Style, output: @escaping @Sendable (String) -> Void) {
        self.style = style
        self.output = output
    }

    public func planned(files: Int, bytes: Int64) {
        totalFiles = files
        totalBytes = bytes
        emit(["event": "planned", "files": files, "bytes": bytes])
    }

    public func fileStarted(_ path: String) {
        current = path
        draw(force: false)
    }

    /// Bytes of the current files read from the source.
    public func read(_ count: Int) {
        bytesDone += Int64(count)
        draw(force: false)
    }

    /// A file is done. `skippedBytes` are its bytes not read (unchanged files) so the total still adds up.
    public func fileFinished(_ path: String, outcome: String, size: Int64, skippedBytes: Int64 = 0) {
        filesDone += 1
        bytesDone += skippedBytes
        if style == .jsonLines {
            // Written by hand, keys sorted as in the other events: this line is printed for every file.
            output("{\"bytes_done\":\(bytesDone),\"event\":\"file\",\"files_done\":\(filesDone),\"outcome\":\(JSONText.quoted(outcome)),"
                + "\"path\":\(JSONText.quoted(path)),\"size\":\(size),\"time\":\"\(timestamp())\"}\n")
        }
        draw(force: false)
    }

    public func finished(_ report: UploadReport) {
        if style == .terminal { output("\r\u{1B}[K") }
        emit([
            "event": "summary", "label": report.label, "files": report.filesSeen, "bytes_seen": report.bytesSeen,
            "bytes_read": report.bytesRead, "bytes_uploaded": report.bytesUploaded, "bytes_saved_by_dedupe": report.bytesSavedByDedupe,
            "staged": report.filesStaged, "duplicates": report.duplicates, "unchanged": report.unchanged,
            "unreadable": report.unreadable.map(\.path), "skipped": report.skipped, "notes": report.notes,
            "unchanged_checked": report.unchangedChecked, "bit_rot": report.suspectedBitRot.map { ["path": $0.path, "detail": $0.error] },
            "git_ignored_files": report.gitIgnoredFiles, "git_ignored_bytes": report.gitIgnoredBytes, "git_repositories": report.gitRepositories,
            "walk_problems": report.walkProblems.map(\.line), "complete": report.isComplete, "elapsed_seconds": report.elapsed.seconds,
            "index_hits": report.indexHits, "index_rechecked": report.indexRechecked, "index": report.indexStatus ?? "none",
            "snapshot_copy_of": report.snapshotCopiedFrom ?? 0,
        ])
    }

    private func emit(_ event: [String: any Sendable]) {
        guard style == .jsonLines else { return }
        var event = event
        event["time"] = timestamp()
        guard let data = try? JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]) else { return }
        output(String(decoding: data, as: UTF8.self) + "\n")
    }

    /// Now, as ISO 8601 in UTC with whole seconds (what `timeFormatter` writes), formatted once a second.
    private func timestamp() -> String {
        let now = Date()
        let second = Int(now.timeIntervalSince1970.rounded(.down))
        if second != stampSecond {
            stampSecond = second
            stamp = timeFormatter.string(from: now)
        }
        return stamp
    }

    private func draw(force: Bool) {
        guard style == .terminal else { return }
        let now = ContinuousClock.now
        guard force || now - lastDraw >= .milliseconds(200) else { return }
        lastDraw = now
        samples.append((now, bytesDone))
        samples.removeAll { now - $0.0 > .seconds(10) }
        var rate = 0.0
        if let first = samples.first, now - first.0 > .milliseconds(500) {
            rate = Double(bytesDone - first.1) / (now - first.0).seconds
        }
        let fraction = totalBytes > 0 ? min(1, Double(bytesDone) / Double(totalBytes)) : 0
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let eta = rate > 0 ? Self.clock(Double(totalBytes - bytesDone) / rate) : "--:--"
        let name = current.count > 40 ? "…" + current.suffix(39) : current
        output("\r\u{1B}[K[\(bar)] \(Int(fraction * 100))% \(filesDone)/\(totalFiles) files \(Format.bytes(bytesDone))/\(Format.bytes(totalBytes)) \(Format.bytes(Int64(rate)))/s ETA \(eta) \(name)")
    }

    private static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let total = Int(seconds)
        return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60) : String(format: "%d:%02d", total / 60, total % 60)
    }
}

/// Passes a source's chunks through, telling the progress how many bytes went by, and `atEnd` once the reader has
/// confirmed the end (after the last chunk: the whole file is read, though the store may still be writing it).
struct CountingChunks<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let progress: UploadProgress
    var atEnd: @Sendable () -> Void = {}

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let progress: UploadProgress
        let atEnd: @Sendable () -> Void

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else {
                atEnd()
                return nil
            }
            await progress.read(chunk.readableBytes)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), progress: progress, atEnd: atEnd) }
}
