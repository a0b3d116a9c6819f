import Foundation
import PipelineCore

/// Everything the page, `/api/status` and `/metrics` show, read from the catalog at one moment.
public struct StatusSnapshot: Sendable, Codable {
    public var generatedAt: Date
    /// How long the catalog queries took for this snapshot.
    public var queryMilliseconds: Double
    public var filesTotal: Int64
    /// Every state of `FileState`, zeros included.
    public var filesByState: [String: Int64]
    public var bytesByState: [String: Int64]
    /// The original size of every file known.
    public var bytesRaw: Int64
    /// What archived files take in the archive (after transcoding; before bundle compression).
    public var bytesStored: Int64
    /// All savings: transcoding + dedupe + bundle compression.
    public var bytesSaved: Int64
    /// Archived files whose stored copy is smaller than the original (transcoded videos): original − stored.
    public var bytesSavedTranscoding: Int64
    /// Duplicates: content already archived by another row, never stored twice.
    public var bytesSavedDedupe: Int64
    /// Archived bundles: members' bytes − the compressed bundle's bytes.
    public var bytesSavedCompression: Int64
    /// Files and bytes that need nothing more (archived or duplicate).
    public var filesDone: Int64
    public var bytesDone: Int64
    /// bytesDone over every byte known (including bytes the uploaders counted but have not catalogued yet).
    public var progress: Double
    /// Bytes archived per second over the recent window.
    public var bytesPerSecond: Double
    public var etaSeconds: Double?
    public var sources: [SourceStatus]
    public var workers: [WorkerStatus]
    public var failures: [FailureStatus]
    /// Videos archived unconverted for a person to look at: the transcode could not be trusted to replace them.
    public var keptRaw: KeptRawStatus
    public var archivedSeries: ArchivedSeries
    public var recentAlerts: [AlertStatus]
    public var alertsUndelivered: Int64
    /// Cold and warm: sources, files, bytes stored and an estimated monthly storage cost at list price.
    public var tiers: [TierStatus] = []
    /// Every spool (`uploader upload --spool`): what waits in it and what its sender last said.
    public var spools: [SpoolSenderStatus] = []
    /// The tiers' estimates together.
    public var estimatedMonthlyUSD: Double { tiers.reduce(0) { $0 + $1.estimatedMonthlyUSD } }

    enum CodingKeys: String, CodingKey {
        case generatedAt = "generated_at"
        case queryMilliseconds = "query_ms"
        case filesTotal = "files_total"
        case filesByState = "files_by_state"
        case bytesByState = "bytes_by_state"
        case bytesRaw = "bytes_raw"
        case bytesStored = "bytes_stored"
        case bytesSaved = "bytes_saved"
        case bytesSavedTranscoding = "bytes_saved_transcoding"
        case bytesSavedDedupe = "bytes_saved_dedupe"
        case bytesSavedCompression = "bytes_saved_compression"
        case filesDone = "files_done"
        case bytesDone = "bytes_done"
        case progress
        case bytesPerSecond = "bytes_per_second"
        case etaSeconds = "eta_seconds"
        case sources, workers, failures
        case keptRaw = "kept_raw"
        case archivedSeries = "archived_series"
        case recentAlerts = "recent_alerts"
        case alertsUndelivered = "alerts_undelivered"
        case tiers, spools
    }
}

public struct SourceStatus: Sendable, Codable {
    public var id: Int64
    public var label: String
    public var metadata: JSONValue
    public var note: String?
    public var startedAt: Date
    /// When the uploader finished walking the source (nil while it is still uploading).
    public var finishedAt: Date?
    /// What the uploader's walk counted.
    public var filesSeen: Int64
    public var bytesSeen: Int64
    /// Rows in the catalog.
    public var filesTotal: Int64
    public var bytesTotal: Int64
    public var filesByState: [String: Int64]
    public var bytesByState: [String: Int64]
    public var filesDone: Int64
    public var bytesDone: Int64
    public var progress: Double
    public var bytesPerSecond: Double
    public var etaSeconds: Double?
    /// Finished uploading, every catalogued file archived or duplicate, and the last upload saw all of the source.
    public var complete: Bool
    /// Paths the last upload run could not read (directories not opened or listed to the end, entries not
    /// inspected): files may be missing. `walkProblemPaths` lists the first few as "path: problem".
    public var walkProblems: Int64 = 0
    public var walkProblemPaths: [String] = []
    /// "age, to 2 recipients" or "age, with a passphrase" for an encrypted source; its videos are archived as
    /// recorded, not transcoded (the cloud cannot read them), and counted here.
    public var encryption: String?
    public var videosNotTranscoded: Int64 = 0
    /// `cold` or `warm` (`sources.tier`).
    public var tier: String = SourceTier.cold.rawValue
    /// The spools its `spooled` files wait in (read, not sent yet), with how many in each; their senders' state
    /// is in `StatusSnapshot.spools`.
    public var waitingInSpools: [SpoolWait] = []

    /// Files read into one spool and not sent yet.
    public struct SpoolWait: Sendable, Codable, Hashable {
        public var spoolID: UUID
        public var files: Int64

        enum CodingKeys: String, CodingKey {
            case spoolID = "spool_id", files
        }
    }

    /// Files whose bytes reached the cloud (catalogued and not waiting in a spool).
    public var filesSent: Int64 { filesTotal - (filesByState["spooled"] ?? 0) }

    enum CodingKeys: String, CodingKey {
        case id, label, metadata, note, encryption, tier
        case waitingInSpools = "waiting_in_spools"
        case videosNotTranscoded = "videos_not_transcoded"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case filesSeen = "files_seen"
        case bytesSeen = "bytes_seen"
        case filesTotal = "files_total"
        case bytesTotal = "bytes_total"
        case filesByState = "files_by_state"
        case bytesByState = "bytes_by_state"
        case filesDone = "files_done"
        case bytesDone = "bytes_done"
        case progress
        case bytesPerSecond = "bytes_per_second"
        case etaSeconds = "eta_seconds"
        case complete
        case walkProblems = "walk_problems"
        case walkProblemPaths = "walk_problem_paths"
    }
}

public struct WorkerStatus: Sendable, Codable {
    public enum Health: String, Sendable, Codable {
        case alive, dead, stopped
    }

    public var id: UUID
    public var role: String
    public var host: String
    public var pid: Int?
    public var version: String?
    public var startedAt: Date
    public var heartbeatAt: Date
    public var heartbeatAgeSeconds: Double
    public var stoppedAt: Date?
    public var stopReason: String?
    public var status: Health
    /// Rows this worker holds a lease on.
    public var jobs: Int64

    enum CodingKeys: String, CodingKey {
        case id, role, host, pid, version
        case startedAt = "started_at"
        case heartbeatAt = "heartbeat_at"
        case heartbeatAgeSeconds = "heartbeat_age_seconds"
        case stoppedAt = "stopped_at"
        case stopReason = "stop_reason"
        case status, jobs
    }
}

public struct FailureStatus: Sendable, Codable {
    public var fileID: Int64
    public var source: String
    public var path: String
    public var state: String
    public var error: String?
    public var attempts: Int
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case fileID = "file_id"
        case source, path, state, error, attempts
        case updatedAt = "updated_at"
    }
}

/// Videos whose raw file is archived instead of (or until a person decides about) a transcode: the raw file had
/// read errors, restarting timestamps or a changing aspect, the transcode lacked a stream or length
/// (`details.kept_raw`), or the transcode failed (`details.transcode_failed`). Nothing is lost, but the footage
/// takes raw space and may need a person (split the recordings, transcode by hand, or accept the raw file).
public struct KeptRawStatus: Sendable, Codable {
    public struct File: Sendable, Codable {
        public var fileID: Int64
        public var source: String
        public var path: String
        public var state: String
        /// Human-readable reasons.
        public var reasons: [String]
        public var updatedAt: Date

        enum CodingKeys: String, CodingKey {
            case fileID = "file_id"
            case source, path, state, reasons
            case updatedAt = "updated_at"
        }
    }

    /// Every such video (not deleted).
    public var count: Int64
    /// The latest few, newest first.
    public var latest: [File]
}

/// Bytes archived per time bucket over the recent window, with the running total (all archived bytes up to the
/// end of each bucket, including those archived before the window).
public struct ArchivedSeries: Sendable, Codable {
    public struct Point: Sendable, Codable {
        public var start: Date
        public var bytes: Int64
        public var cumulativeBytes: Int64

        enum CodingKeys: String, CodingKey {
            case start, bytes
            case cumulativeBytes = "cumulative_bytes"
        }
    }

    public var bucketSeconds: Double
    public var points: [Point]

    enum CodingKeys: String, CodingKey {
        case bucketSeconds = "bucket_seconds"
        case points
    }
}

public struct AlertStatus: Sendable, Codable {
    public var kind: String
    public var message: String
    public var createdAt: Date
    public var deliveredAt: Date?
    public var attempts: Int
    public var lastError: String?

    enum CodingKeys: String, CodingKey {
        case kind, message
        case createdAt = "created_at"
        case deliveredAt = "delivered_at"
        case attempts
        case lastError = "last_error"
    }
}
