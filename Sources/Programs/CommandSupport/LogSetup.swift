#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Catalog
import Foundation
import Logging
import PipelineCore
import Synchronization

/// Logging for the executables: level and format from the settings.
///
/// The workers (transcoder, archiver, status server) write JSON lines to standard output when it is not a
/// terminal — what CloudWatch Logs, Cloud Logging or `docker logs` ingest as they are — and readable lines on a
/// terminal. The uploader and pipeline keep standard output for their results, so their logs go to standard
/// error. `BACKUP_LOG_FORMAT=json|text` overrides the choice.
public enum LogSetup {
    public static let levelSetting = "BACKUP_LOG_LEVEL"
    public static let formatSetting = "BACKUP_LOG_FORMAT"
    /// The label of the logger `WorkerLogWriter` queries the database with: never kept in `worker_logs`.
    static let workerLogWriterLabel = "personal-backup.worker-logs"

    enum Format: String { case json, text }

    /// Bootstraps swift-log once per process (libraries only ever receive a `Logger`).
    /// `extraHandler` (the OTLP exporter's) receives every line as well.
    /// `workerLogs` receives the lines of level notice and above for the catalog (`worker_logs`), except the lines of
    /// `workerLogWriterLabel`, the writer's own (its database calls), which would otherwise feed themselves.
    static func bootstrap(
        role: WorkerRole, levelText: String?, formatText: String? = nil, extraHandler: (@Sendable (String) -> any LogHandler)? = nil,
        workerLogs: WorkerLogQueue? = nil
    ) throws(ConfigurationError) -> Logger {
        var level = Logger.Level.info
        if let levelText {
            guard let parsed = Logger.Level(rawValue: levelText.lowercased()) else {
                throw ConfigurationError(setting: levelSetting, problem: "must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            level = parsed
        }
        let toStandardOutput = [.transcoder, .archiver, .statusServer].contains(role)
        let descriptor = toStandardOutput ? STDOUT_FILENO : STDERR_FILENO
        var format: Format = isatty(descriptor) == 1 ? .text : (toStandardOutput ? .json : .text)
        if let formatText {
            guard let parsed = Format(rawValue: formatText.lowercased()) else {
                throw ConfigurationError(setting: formatSetting, problem: "must be json or text")
            }
            format = parsed
        }
        Bootstrap.once(format: format, toStandardOutput: toStandardOutput, extraHandler: extraHandler, workerLogs: workerLogs)
        var logger = Logger(label: "personal-backup.\(role.rawValue)")
        logger.logLevel = level
        return logger
    }

    /// `LoggingSystem.bootstrap` may run only once per process.
    private enum Bootstrap {
        static let done = Mutex(false)

        static func once(format: Format, toStandardOutput: Bool, extraHandler: (@Sendable (String) -> any LogHandler)?, workerLogs: WorkerLogQueue?) {
            let first = done.withLock { done in
                defer { done = true }
                return !done
            }
            guard first else { return }
            LoggingSystem.bootstrap { label in
                let local: any LogHandler =
                    switch format {
                    case .json: JSONLineLogHandler(label: label, toStandardOutput: toStandardOutput)
                    case .text: toStandardOutput ? StreamLogHandler.standardOutput(label: label) : StreamLogHandler.standardError(label: label)
                    }
                var handlers = [local]
                if let extraHandler { handlers.append(extraHandler(label)) }
                if let workerLogs, label != workerLogWriterLabel { handlers.append(CatalogLogHandler(queue: workerLogs)) }
                return handlers.count == 1 ? local : MultiplexLogHandler(handlers)
            }
        }
    }
}

/// One JSON object per line: `time`, `level`, `message`, `logger`, `source`, then the metadata under its own
/// (dotted) keys — `file.id`, `source.label`, `duration_ms`… — so log tools can filter on them.
public struct JSONLineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let toStandardOutput: Bool

    public init(label: String, toStandardOutput: Bool) {
        self.label = label
        self.toStandardOutput = toStandardOutput
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// One writer at a time, so that lines from different tasks never interleave.
    static let lock = Mutex(())

    public func log(event: LogEvent) {
        var object: [String: Any] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { object[key] = Self.json(value) }
        object["time"] = Self.timestamp()
        object["level"] = event.level.rawValue
        object["message"] = event.message.description
        object["logger"] = label
        object["source"] = event.source
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(UInt8(ascii: "\n"))
        // One write per line: lines from several threads never interleave.
        let descriptor = toStandardOutput ? STDOUT_FILENO : STDERR_FILENO
        Self.lock.withLock { _ in
            data.withUnsafeBytes { raw in
                var written = 0
                while written < raw.count {
                    let result = write(descriptor, raw.baseAddress! + written, raw.count - written)
                    if result < 0 && errno == EINTR { continue }
                    if result <= 0 { return }
                    written += result
                }
            }
        }
    }

    static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(json)
        case .dictionary(let values): values.mapValues(json)
        }
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var time = now.tv_sec
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(now.tv_nsec / 1_000_000))
    }
}
