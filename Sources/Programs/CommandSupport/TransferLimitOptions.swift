import ArgumentParser
import Foundation
import Logging
import ObjectStore
import PipelineCore

/// `--bwlimit`, `--timezone` and `--window` of `uploader upload`, `image`, `restore`, `verify`, `audit`,
/// `rebuild-catalog` and `pipeline run`; the same in
/// the environment or config file as `BACKUP_BWLIMIT`, `BACKUP_TIMEZONE` and `BACKUP_WINDOWS`.
public struct TransferLimitOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .customLong("bwlimit"), help: ArgumentHelp(
        "Bandwidth limit of S3 transfers, in rclone's syntax: 1M, 512K, off, UPLOAD:DOWNLOAD (1M:512K), or a timetable \"08:00,512K 19:00,2M 23:00,off\" (BACKUP_BWLIMIT).",
        valueName: "rate|timetable"))
    var bandwidth: String?

    @Option(name: .customLong("window"), help: ArgumentHelp(
        "Start S3 transfers only in this daily window, e.g. 01:00-07:00 or 22:00-06:00 (repeatable; BACKUP_WINDOWS); always: no window, whatever is configured.", valueName: "HH:MM-HH:MM"))
    var windows: [String] = []

    @Option(name: .customLong("timezone"), help: ArgumentHelp(
        "The time zone of --bwlimit timetables and --window, an IANA name (BACKUP_TIMEZONE; default: this machine's).", valueName: "zone"))
    var timeZone: String?

    /// The limits the flags and settings ask for (exit code 2 with one line on a bad value).
    public func limits(_ context: ProgramContext) throws(ConfigurationError) -> TransferLimits {
        try TransferLimits.resolve(bandwidth: bandwidth, windows: windows, timeZone: timeZone, settings: context.setting)
    }
}

extension ProgramContext {
    /// This context with `options` applied to every S3 store it opens from now on.
    public func pacingTransfers(_ options: TransferLimitOptions) throws(ConfigurationError) -> ProgramContext {
        var context = self
        let limits = try options.limits(self)
        context.transferThrottle = TransferThrottle.make(limits, logger: logger)
        if !limits.isUnlimited {
            logger.info("transfer limits", metadata: [
                "transfer.bwlimit": "\(limits.bandwidth.slots.count == 1 ? limits.bandwidth.slots[0].limit.description : "timetable")",
                "transfer.windows": "\(limits.windows.windows.map(\.description).joined(separator: ", "))",
                "transfer.timezone": "\(limits.timeZone.identifier)",
            ])
        }
        return context
    }
}
