import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import ServiceLifecycle
import SourceReading
import SystemIO

/// How a disc goes in: `auto` follows the rule (files; a DVD-Video or a disc whose ISO 9660 view is incomplete as
/// an image as well; a disc whose file system cannot be listed as an image only), or always one way.
public enum DiscReadMode: String, Sendable, CaseIterable {
    case auto, files, image, both
}

/// The settings of `uploader discs`.
public struct DiscLoopConfiguration: Sendable {
    public var device: String
    public var labelTemplate: DiscLabelTemplate
    /// Where `{n}` starts counting.
    public var firstNumber = 1
    /// `{volume}` of a disc without a volume label, when nobody at a terminal names it.
    public var fallbackVolume = "Disc"
    public var mode = DiscReadMode.auto
    /// What every disc's upload shares (metadata, note, keep-raw, tier, encryption, concurrency); the label is the disc's.
    public var upload: UploadConfiguration
    /// Where ISO members are spooled while hashed (the uploader's spool directory).
    public var spoolDirectory: String
    public var imager = DiscImagerConfiguration()
    /// Run through `/bin/sh` with the device appended as its last argument, instead of the CDROMEJECT ioctl.
    public var ejectCommand: String?
    /// How often the drive is asked whether a disc is in.
    public var pollInterval: Duration = .seconds(1)
    /// Stop after this many discs (`--once` is 1); nil: until stopped.
    public var maxDiscs: Int?
    public var progressStyle: UploadProgress.Style
    /// Asks the person at the terminal for a name (the prompt given); nil when nobody is at a terminal.
    public var askName: (@Sendable (String) async -> String?)?

    public init(device: String, labelTemplate: DiscLabelTemplate, upload: UploadConfiguration, spoolDirectory: String, progressStyle: UploadProgress.Style) {
        self.device = device
        self.labelTemplate = labelTemplate
        self.upload = upload
        self.spoolDirectory = spoolDirectory
        self.progressStyle = progressStyle
    }
}

/// What happened to one disc, as reported at the end and in the `disc_done` event.
public struct DiscResult: Sendable {
    public enum Status: String, Sendable, CaseIterable {
        /// Everything on the disc is stored (still to be archived by the workers).
        case stored
        /// Something was not read (files unreadable, the disc broke off mid-read, a degraded image): the source is
        /// marked incomplete and is never called archived.
        case incomplete
        /// Neither view of the disc could be read: nothing stored, no source.
        case unreadable
        /// A readable file system without a single file: nothing stored, no source.
        case empty
        /// A disc seen before whose source belongs to someone other than the explicit `--owner`: not read, its
        /// source untouched.
        case refused
    }

    public var number: Int
    public var status: Status
    public var labels: [String] = []
    public var detail: String
}

/// `uploader discs`: waits for a disc, reads it (files, image or both, by the rule), ejects it and waits for the next;
/// a bad disc is reported and ejected and the loop goes on. A `Service`: SIGINT/SIGTERM stop it gracefully (while
/// waiting at once; while reading, the disc's run is cancelled and its source stays "upload not finished").
public final class DiscLoop: Service, Sendable {
    let configuration: DiscLoopConfiguration
    let catalog: IngestCatalog
    let staging: any ObjectStore
    let logger: Logger
    let output: DiscLoopOutput
    let drive: DiscDrive
    private let state = LockedBox<(results: [DiscResult], interrupted: Bool, reading: Bool)>(([], false, false))

    public init(configuration: DiscLoopConfiguration, catalog: IngestCatalog, staging: any ObjectStore, output: DiscLoopOutput, logger: Logger) {
        self.configuration = configuration
        self.catalog = catalog
        self.staging = staging
        self.output = output
        self.logger = logger
        self.drive = DiscDrive(path: configuration.device)
    }

    /// Every disc handled so far, in order.
    public var results: [DiscResult] { state.value.results }
    /// Whether a signal stopped the loop (rather than `--count` or an error).
    public var wasInterrupted: Bool { state.value.interrupted }
    /// Whether a disc was being read when the loop stopped (its source is then not finished).
    public var wasReadingWhenStopped: Bool { state.value.reading }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await self.loop() }
        } catch {
            // Cancellation surfaces as whatever was running (a read, a query, an upload).
            guard Task.isShuttingDownGracefully || Task.isCancelled else { throw error }
            state.withLock { $0.interrupted = true }
        }
    }

    private func loop() async throws {
        var previous: Set<String> = []
        var number = 0
        while configuration.maxDiscs.map({ number < $0 }) ?? true {
            let token = try await waitForDisc(after: previous)
            number += 1
            state.withLock { $0.reading = true }
            let result = try await process(number: number)
            state.withLock {
                $0.results.append(result)
                $0.reading = false
            }
            output.event("disc_done", [
                "disc": result.number, "status": result.status.rawValue, "labels": result.labels, "detail": result.detail,
                "complete": result.status == .stored,
            ], line: Self.line(result))
            // The disc as it is now counts as this one too (an image file cut short while it was read is not a
            // new disc), unless the eject below puts another in.
            let drive = self.drive
            previous = [token]
            if case .disc(let now) = try await blocking({ drive.presence() }) { previous.insert(now) }
            await eject(number: number)
        }
    }

    /// Waits until the drive holds a disc other than the last one (whose tokens are `previous`): another token, or
    /// any disc after the drive was seen empty (a CD drive cannot tell two discs apart).
    private func waitForDisc(after previous: Set<String>) async throws -> String {
        var sawEmpty = previous.isEmpty
        var announced = false
        while true {
            try Task.checkCancellation()
            let drive = self.drive
            switch try await blocking({ drive.presence() }) {
            case .disc(let token):
                if sawEmpty || !previous.contains(token) { return token }
                if !announced {
                    output.event("waiting", ["device": configuration.device, "reason": "the last disc is still in"],
                                 line: "waiting: take the disc out of \(configuration.device) and insert the next one")
                    announced = true
                }
            case .noDisc(let reason):
                sawEmpty = true
                if !announced {
                    output.event("waiting", ["device": configuration.device, "reason": reason],
                                 line: "waiting for a disc in \(configuration.device) (\(reason)); Ctrl-C to stop")
                    announced = true
                }
            }
            try await Task.sleep(for: configuration.pollInterval)
        }
    }

    /// Ejects the disc: the configured command, or the CDROMEJECT ioctl. A failure is reported, never fatal.
    private func eject(number: Int) async {
        let device = configuration.device
        do {
            if let command = configuration.ejectCommand {
                // `CMD DEVICE`, through the shell: the command may have arguments of its own (`eject -T`).
                let result = try await Subprocess.run("/bin/sh", ["-c", command + " \"$1\"", "sh", device])
                guard result.status == 0 else {
                    throw IngestError(.readFailed, path: device, "the eject command exited with \(result.status): \(result.output.prefix(200))")
                }
            } else {
                let drive = self.drive
                if try await blocking({ try drive.eject() }) == false {
                    output.event("ejected", ["disc": number, "ejected": false], line: "disc \(number): \(device) is a file standing in for a drive: nothing to eject; put the next image in its place")
                    return
                }
            }
            output.event("ejected", ["disc": number, "ejected": true], line: "disc \(number): ejected")
        } catch {
            output.event("ejected", ["disc": number, "ejected": false, "error": "\(error)"], line: "disc \(number): could not eject: \(error); take it out by hand")
        }
    }

    static func line(_ result: DiscResult) -> String {
        let names = result.labels.map { "\"\($0)\"" }.joined(separator: " and ")
        switch result.status {
        case .stored: return "disc \(result.number) \(names): stored — \(result.detail)"
        case .incomplete: return "disc \(result.number) \(names): INCOMPLETE — \(result.detail)"
        case .unreadable: return "disc \(result.number): UNREADABLE, nothing stored — \(result.detail)"
        case .empty: return "disc \(result.number): EMPTY, nothing stored — \(result.detail)"
        case .refused: return "disc \(result.number) \(names): NOT READ, nothing stored — \(result.detail)"
        }
    }
}

/// Where the loop reports: one human line per event on standard output, or JSON lines (`--json`) with `event`,
/// `time` and the event's fields.
public struct DiscLoopOutput: Sendable {
    let json: Bool
    let write: @Sendable (String) -> Void

    public init(json: Bool, write: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }) {
        self.json = json
        self.write = write
    }

    public func event(_ name: String, _ fields: [String: any Sendable], line: String) {
        guard json else { return write(line) }
        var object: [String: Any] = fields
        object["event"] = name
        object["time"] = ISO8601DateFormatter().string(from: Date())
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        write(String(decoding: data, as: UTF8.self))
    }
}
