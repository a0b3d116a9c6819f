import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import ObjectStore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import SystemIO
import Upload
import UploadCommandSupport

/// A spool problem as one line on standard error and its exit code: 2 for a directory that is not a spool, else 1.
func spoolFailure(_ error: SpoolError) -> ExitCode {
    CommandRunner.printToStandardError("error: \(error)")
    return ExitCode(error.code == .notASpool ? 2 : 1)
}

/// `uploader send [--spool DIR]`: drains the spool into staging, then exits.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send what `uploader upload --spool` read into the spool on to the staging bucket, then exit.",
        discussion: """
            Each file is sent with the resumable multipart upload, checked against the catalog (size and SHA-256), its \
            row moved from spooled to staged, and only then removed from the spool. Files no catalog row names that are \
            over an hour old (left by an uploader killed between its spool write and its row) are removed. Several senders may drain one spool \
            at once (two processes, or two machines on a NAS): each file is claimed with a lease and sent once. A sender \
            killed mid-file is taken over when its lease runs out, and the next one sends only the missing parts.
            Exit codes: 0 everything claimed was sent, 1 some files were not sent (listed; they stay spooled), 2 usage \
            or configuration error, 130 interrupted.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var spool: SpoolOptions
    @OptionGroup(title: "Bandwidth and time windows") var transfers: TransferLimitOptions

    @Option(help: "Files sent at the same time (1-16).")
    var concurrency: Int = 2

    @Option(help: "Seconds a claimed file stays this sender's without a heartbeat (a killed sender's files are taken over after this).")
    var leaseSeconds: Int = 60

    @Flag(help: "Progress and summary as JSON lines on standard output.")
    var json = false

    @Flag(help: "Keep running: send what arrives, back off on network errors, stop gracefully on SIGTERM or Ctrl-C (the systemd unit runs this).")
    var watch = false

    @Option(help: "With --watch: seconds between looks at an empty spool.")
    var pollSeconds: Double = 30

    @Option(help: "With --watch: the longest wait between attempts while sending fails (backoff doubles from 1 s up to this).")
    var maxBackoffSeconds: Double = 300

    func validate() throws {
        guard pollSeconds > 0, maxBackoffSeconds >= 1 else { throw ValidationError("--poll-seconds must be positive and --max-backoff-seconds at least 1") }
        guard (1...16).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 16") }
        guard leaseSeconds >= 3 else { throw ValidationError("--lease-seconds must be at least 3") }
    }

    func run() async throws {
        let context = try ProgramContext.load(options, role: .uploader).pacingTransfers(transfers)
        guard let path = spool.resolve(context) else {
            throw ConfigurationError(setting: SpoolSettingName.directory, problem: "no spool given (use --spool DIR or set \(SpoolSettingName.directory))")
        }
        let json = json
        if watch { return try await runWatching(context, path: path) }
        let report: SendReport
        do {
            report = try await Interruption.cancellingOnSignals {
                try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
                    let directory = try await SpoolDirectory.open(path, create: false)
                    let catalog = SpoolCatalog(client: client, logger: context.logger)
                    try await catalog.register(spoolID: directory.id, host: ProcessInfo.processInfo.hostName, path: directory.path)
                    let sender = try await makeSender(context, client: client, directory: directory)
                    let report = try await sender.drain(onSent: Self.printer(json: json))
                    await sender.recordState("stopped", "the last run sent \(report.filesSent) file\(report.filesSent == 1 ? "" : "s")")
                    return report
                }
            }
        } catch is Interruption.Interrupted {
            CommandRunner.printToStandardError("\ninterrupted: what was sent is recorded; run `uploader send` again to continue (a half-sent file resumes)")
            throw ExitCode(130)
        } catch let error as SpoolError {
            throw spoolFailure(error)
        }
        if json {
            print(Self.jsonLine([
                "event": "summary", "files_sent": report.filesSent, "bytes_sent": report.bytesSent, "bytes_uploaded": report.bytesUploaded,
                "files_swept": report.filesSwept, "orphans_removed": report.orphansRemoved, "files_left": report.filesLeft, "failures": report.failures, "exit_code": report.failures.isEmpty ? 0 : 1,
            ]))
        } else {
            print("sent \(report.filesSent) file\(report.filesSent == 1 ? "" : "s") (\(Format.bytes(report.bytesSent)), \(Format.bytes(report.bytesUploaded)) uploaded now)")
            if report.filesLeft > Int64(report.failures.count) {
                print("\(report.filesLeft - Int64(report.failures.count)) file(s) still spooled, held by another sender (or one killed less than --lease-seconds ago)")
            }
            if report.filesSwept > 0 { print("removed \(report.filesSwept) spool file\(report.filesSwept == 1 ? "" : "s") an earlier sender had already sent") }
            if report.orphansRemoved > 0 { print("removed \(report.orphansRemoved) orphaned spool file(s)") }
        }
        guard report.failures.isEmpty else {
            for failure in report.failures { CommandRunner.printToStandardError("not sent: \(failure)") }
            throw ExitCode(1)
        }
    }

    func makeSender(_ context: ProgramContext, client: PostgresClient, directory: SpoolDirectory) async throws -> SpoolSender {
        let catalog = SpoolCatalog(client: client, logger: context.logger)
        try await catalog.register(spoolID: directory.id, host: ProcessInfo.processInfo.hostName, path: directory.path)
        return SpoolSender(
            catalog: catalog, spool: try await SpoolStore(spool: directory, limit: nil), staging: try await context.openStaging(),
            configuration: SendConfiguration(concurrency: concurrency, lease: .seconds(leaseSeconds), limits: context.transferThrottle?.limits),
            logger: context.logger)
    }

    /// `--watch`: the sender as a service until SIGTERM or Ctrl-C, which abandon the part in flight (its file given
    /// back with its journal) and exit 0.
    func runWatching(_ context: ProgramContext, path: String) async throws {
        let (json, poll, maxBackoff) = (json, Duration.milliseconds(Int64(pollSeconds * 1000)), Duration.milliseconds(Int64(maxBackoffSeconds * 1000)))
        do {
            try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
                let directory = try await SpoolDirectory.open(path, create: false)
                let sender = try await makeSender(context, client: client, directory: directory)
                CommandRunner.printToStandardError("sending from \(directory.path) to staging; stop with SIGTERM or Ctrl-C")
                let service = SpoolSenderService(sender: sender, poll: poll, maxBackoff: maxBackoff, onSent: Self.printer(json: json)) { message in
                    CommandRunner.printToStandardError(message)
                }
                try await runUntilShutdown([service], logger: context.logger)
            }
        } catch let error as SpoolError {
            throw spoolFailure(error)
        }
    }

    static func printer(json: Bool) -> @Sendable (SentFile) -> Void {
        { sent in
            // Written at once (not buffered): a watching sender's lines must show as files go.
            let line = json
                ? Self.jsonLine(["event": "sent", "path": sent.path, "key": sent.key, "size": sent.size, "bytes_uploaded": sent.uploaded])
                : "sent \(sent.path) (\(Format.bytes(sent.size))\(sent.uploaded < sent.size ? ", \(Format.bytes(sent.uploaded)) of it now" : ""))"
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    static func jsonLine(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
