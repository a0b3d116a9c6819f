import Foundation
import ArgumentParser
import Catalog
import JobQueue

/// The polling options every worker shares.
public struct WorkerOptions: ParsableArguments {
    @Flag(help: "Drain the queue and exit (batch runs, tests) instead of polling forever.")
    public var once = false

    @Option(help: "Rows claimed at a time (archiver 64, transcoder 1).")
    public var batchSize: Int?

    @Option(help: "Seconds a claim lasts without renewal (renewed every third of it while working).")
    public var leaseSeconds: Int = 30

    @Option(help: "Seconds between polls of an empty queue.")
    public var pollSeconds: Double = 2

    @Option(help: "Seconds in-flight jobs may still run after SIGTERM before they are released.")
    public var shutdownGraceSeconds: Int = 25

    public init() {}

    public var batchSizeWasGiven: Bool { batchSize != nil }

    public func validate() throws {
        guard (1...10_000).contains(batchSize ?? 1) else { throw ValidationError("--batch-size must be between 1 and 10000") }
        guard leaseSeconds >= 3 else { throw ValidationError("--lease-seconds must be at least 3") }
        guard pollSeconds > 0 else { throw ValidationError("--poll-seconds must be positive") }
        guard shutdownGraceSeconds >= 0 else { throw ValidationError("--shutdown-grace-seconds cannot be negative") }
    }

    public func configuration(step: WorkStep) -> PollingWorkerConfiguration {
        PollingWorkerConfiguration(
            step: step, batchSize: batchSize ?? 64, lease: .seconds(leaseSeconds), pollInterval: .milliseconds(Int64(pollSeconds * 1000)),
            shutdownGrace: .seconds(shutdownGraceSeconds), once: once)
    }
}

/// A size such as `16MiB`, `256M`, `1G` or a plain number of bytes.
public struct ByteSize: ExpressibleByArgument, Sendable, Hashable {
    public let bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }

    public init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        let digits = text.prefix { $0.isNumber || $0 == "." }
        guard let number = Double(digits), number >= 0 else { return nil }
        let multipliers: [String: Double] = [
            "": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1_048_576, "mb": 1_000_000, "mib": 1_048_576,
            "g": 1_073_741_824, "gb": 1_000_000_000, "gib": 1_073_741_824,
        ]
        guard let multiplier = multipliers[text.dropFirst(digits.count).lowercased()] else { return nil }
        bytes = Int64(number * multiplier)
    }

    public var defaultValueDescription: String { "\(bytes) bytes" }
}
