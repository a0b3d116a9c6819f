import ArgumentParser
import Foundation
import PipelineCore

/// What `uploader upload`, `uploader image` and `pipeline run` say about the source: its label, and the details
/// every source has (``SourceDetailOptions``).
public struct SourceOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(help: "A name for this disc or drive, e.g. \"DVD 12\". Running again with the same label continues or updates it.")
    public var label: String

    @OptionGroup public var details: SourceDetailOptions

    public var note: String? { details.note }
    public var keepRaw: Bool { details.keepRaw }
    public var tier: SourceTier? { details.tier }

    public func validate() throws {
        guard !label.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--label must not be empty") }
    }

    public func parsedMetadata() throws -> [String: String] { try details.parsedMetadata() }
}

/// A source's metadata, note, whether its raw videos are kept, and its tier: given to one source by `uploader upload`
/// and `uploader image`, to every disc's source by `uploader discs`.
public struct SourceDetailOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .customLong("meta"), help: ArgumentHelp("Free-form metadata for the source, repeatable.", valueName: "key=value"))
    public var metadata: [String] = []

    @Option(help: "A note about the source.")
    public var note: String?

    @Flag(help: ArgumentHelp(
        "Archive this source's raw videos as they are, each with its transcode beside it (<path>.mp4 or .mkv). Stays on for the source once given."))
    public var keepRaw = false

    @Option(help: ArgumentHelp(
        "cold (Deep Archive: cheapest, a restore takes hours) or warm (BACKUP_WARM_STORAGE_CLASS, GLACIER_IR by default: reads back at once, "
            + "smaller bundles). Fixed once the source holds files; left out: the source keeps its tier (cold for a new one).",
        valueName: "tier"))
    public var tier: SourceTier?

    public func validate() throws {
        _ = try parsedMetadata()
    }

    public func parsedMetadata() throws -> [String: String] {
        var result: [String: String] = [:]
        for item in metadata {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw ValidationError("--meta expects key=value, got '\(item)'")
            }
            result[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return result
    }
}

extension SourceTier: ExpressibleByArgument {}
