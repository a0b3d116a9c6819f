import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import ObjectStore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import Upload

/// The spool settings' names (environment or config file).
public enum SpoolSettingName {
    public static let directory = "BACKUP_SPOOL_DIR"
    public static let limit = "BACKUP_SPOOL_LIMIT"
}

/// `--spool DIR` (`BACKUP_SPOOL_DIR`) of `upload` and `send`.
public struct SpoolOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .customLong("spool"), help: ArgumentHelp(
        "The spool directory (local disk or NAS): upload reads into it at disc speed, send drains it into staging (BACKUP_SPOOL_DIR).",
        valueName: "dir"))
    public var directory: String?

    /// The flag, else the setting; nil when neither is given.
    public func resolve(_ context: ProgramContext) -> String? {
        directory ?? context.setting(SpoolSettingName.directory)
    }
}

/// `--spool` and `--spool-limit` of the commands that read a source (`upload`, `image`, `discs`).
public struct ReadingSpoolOptions: ParsableArguments, Sendable {
    public init() {}

    @OptionGroup public var spool: SpoolOptions

    @Option(name: .customLong("spool-limit"), help: ArgumentHelp(
        "The most the spool may hold, e.g. 20G: when full, reading pauses until `uploader send` frees space (BACKUP_SPOOL_LIMIT).", valueName: "size"))
    public var limit: ByteSize?

    /// The spool to read into, or nil to send straight to staging; a bad setting is one line (exit 2).
    public func resolve(_ context: ProgramContext) throws -> SpoolSetting? {
        try SpoolSetting.resolve(path: spool.resolve(context), limit: limit, context: context)
    }
}

/// Where a reading command puts new content: the spool when one is set (its rows say `spooled`), else staging.
public func uploadTarget(_ spool: SpoolSetting?, client: PostgresClient, context: ProgramContext) async throws -> (staging: any ObjectStore, spoolID: UUID?) {
    guard let spool else { return (try await context.openStaging(), nil) }
    let store = try await spool.open(client: client, context: context)
    return (store, store.spool.id)
}

/// The spool an upload writes into, and its size limit.
public struct SpoolSetting: Sendable {
    public let path: String
    public let limit: Int64?

    /// `--spool-limit` (else `BACKUP_SPOOL_LIMIT`): a bad value stops the program with one line naming the setting.
    public static func resolve(path: String?, limit flag: ByteSize?, context: ProgramContext) throws -> SpoolSetting? {
        var limit = flag?.bytes
        if limit == nil, let text = context.setting(SpoolSettingName.limit) {
            guard let parsed = ByteSize(argument: text) else {
                throw ConfigurationError(setting: SpoolSettingName.limit, problem: "not a size (use e.g. 20G, 512MiB or a number of bytes)")
            }
            limit = parsed.bytes
        }
        guard let path else {
            if limit != nil { throw ConfigurationError(setting: SpoolSettingName.limit, problem: "a spool limit needs a spool (--spool or \(SpoolSettingName.directory))") }
            return nil
        }
        if let limit, limit < 1 { throw ConfigurationError(setting: SpoolSettingName.limit, problem: "must be at least 1 byte") }
        return SpoolSetting(path: path, limit: limit)
    }

    /// Opens (or makes) the spool, records it in the catalog and returns the store the upload writes into.
    public func open(client: PostgresClient, context: ProgramContext) async throws -> SpoolStore {
        let directory = try await SpoolDirectory.open(path, create: true)
        try await SpoolCatalog(client: client, logger: context.logger).register(
            spoolID: directory.id, host: ProcessInfo.processInfo.hostName, path: directory.path)
        return try await SpoolStore(spool: directory, limit: limit) { CommandRunner.printToStandardError($0) }
    }
}

/// `uploader send --watch` as a service: drains the spool until the service group's graceful shutdown cancels it.
public struct SpoolSenderService: Service {
    let sender: SpoolSender
    let poll: Duration
    let maxBackoff: Duration
    let onSent: @Sendable (SentFile) -> Void
    let onEvent: @Sendable (String) -> Void

    public init(
        sender: SpoolSender, poll: Duration, maxBackoff: Duration, onSent: @escaping @Sendable (SentFile) -> Void,
        onEvent: @escaping @Sendable (String) -> Void
    ) {
        self.sender = sender
        self.poll = poll
        self.maxBackoff = maxBackoff
        self.onSent = onSent
        self.onEvent = onEvent
    }

    public func run() async throws {
        let (sender, poll, maxBackoff, onSent, onEvent) = (sender, poll, maxBackoff, onSent, onEvent)
        await cancelWhenGracefulShutdown {
            await sender.watch(poll: poll, maxBackoff: maxBackoff, onSent: onSent, onEvent: onEvent)
        }
        onEvent("stopped; anything not sent stays in the spool for the next sender")
    }
}
