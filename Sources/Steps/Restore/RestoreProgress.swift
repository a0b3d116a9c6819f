import Foundation
import PipelineCore

/// What restore, verify and rebuild tell the person watching: a live line and plain lines on a terminal, JSON
/// lines (one event per line, then a `summary`) for programs.
public actor RestoreProgress {
    public enum Style: Sendable { case terminal, jsonLines, silent }

    public let style: Style
    private let output: @Sendable (String, Bool) -> Void
    private var totalBytes: Int64 = 0
    private var bytesDone: Int64 = 0
    private var filesDone = 0
    private var totalFiles = 0
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private var lineShown = false
    /// One formatter for the whole run: creating one per event is expensive (ICU).
    private let timeFormatter = ISO8601DateFormatter()

    /// Events and messages go to standard output; the live line to standard error.
    public static func standard(style: Style) -> RestoreProgress {
        RestoreProgress(style: style) { text, live in
            (live ? FileHandle.standardError : FileHandle.standardOutput).write(Data(text.utf8))
        }
    }

    public init(style: Style, output: @escaping @Sendable (String, Bool) -> Void) {
        self.style = style
        self.output = output
    }

    /// A JSON event (JSON lines only).
    public func event(_ name: String, _ fields: [String: any Sendable]) {
        guard style == .jsonLines else { return }
        var object = fields
        object["event"] = name
        object["time"] = timeFormatter.string(from: Date())
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        output(String(decoding: data, as: UTF8.self) + "\n", false)
    }

    /// A line for people (terminal only).
    public func say(_ line: String) {
        guard style == .terminal else { return }
        clearLine()
        output(line + "\n", false)
    }

    public func planned(files: Int, bytes: Int64) {
        totalFiles = files
        totalBytes = bytes
    }

    public func downloaded(_ count: Int64) {
        bytesDone += count
        draw()
    }

    public func fileDone() {
        filesDone += 1
        draw()
    }

    public func clearLine() {
        if lineShown {
            output("\r\u{1B}[K", true)
            lineShown = false
        }
    }

    private func draw() {
        guard style == .terminal else { return }
        let now = ContinuousClock.now
        guard now - lastDraw >= .milliseconds(250) else { return }
        lastDraw = now
        let percent = totalBytes > 0 ? Int(min(1, Double(bytesDone) / Double(totalBytes)) * 100) : 100
        output("\r\u{1B}[K\(percent)% \(filesDone)/\(totalFiles) files, \(Format.bytes(bytesDone)) of \(Format.bytes(totalBytes)) downloaded", true)
        lineShown = true
    }
}
