import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// Reads a `StatusSnapshot` from the catalog.
///
/// Every query is answered from an index (see `CatalogSchema`): the per-source, per-state aggregate is an
/// index-only scan of `objectstoragefiles_source_state_idx` (totals and per-state figures are summed from it in
/// Swift rather than scanning again); the chart and the recent rate read a range of
/// `objectstoragefiles_archived_at_idx`; failures come from `objectstoragefiles_failed_idx`; held leases from
/// `objectstoragefiles_lease_idx`. The queries run concurrently on the pool.
public struct StatusCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger
    /// The window of the chart (at most; shorter when archiving began more recently).
    public var chartWindow: Duration = .seconds(7 * 24 * 3600)
    public var chartBuckets: Int = 48
    /// The window the recent rate (and so the ETA) is computed over.
    public var rateWindow: Duration = .seconds(30 * 60)
    /// A worker is shown as dead when its heartbeat is older than this and it did not stop.
    public var deadAfter: Duration = .seconds(35)
    /// The class each tier stores in now, for the per-tier cost estimate.
    public var tierClasses = TierStorageClasses()

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    static let pendingStates: Set<String> = ["spooled", "staged", "transcoding", "transcoded", "archiving"]
    static let doneStates: Set<String> = ["archived", "duplicate"]

    struct StateRow: Sendable {
        var sourceID: Int64
        var state: String
        var files: Int64
        var bytes: Int64
        var storedBytes: Int64
        var savedBytes: Int64
    }

    public func read() async throws -> StatusSnapshot {
        try await CatalogError.wrapping("read the status") {
            let started = ContinuousClock.now
            async let stateRows = readStateRows()
            async let sourceRows = readSources()
            async let workerRows = readWorkers()
            async let failureRows = readFailures()
            async let keptRawRows = readKeptRaw()
            async let rateRows = readRecentRates()
            async let seriesRows = readArchivedBuckets()
            async let compression = readBundleCompression()
            async let alerts = readAlerts()
            async let problemRows = WalkProblems.summaries(client: client, logger: logger)
            async let tierRows = readTiers()
            let spoolCatalog = SpoolCatalog(client: client, logger: logger)
            async let spoolRows = spoolCatalog.senders()
            async let waitingRows = spoolCatalog.waitingBySource()

            let states = try await stateRows
            let sourcesTable = try await sourceRows
            let workers = try await workerRows
            let failures = try await failureRows
            let keptRaw = try await keptRawRows
            let rates = try await rateRows
            let series = try await seriesRows
            let compressionSaved = try await compression
            let (recentAlerts, undelivered) = try await alerts
            let walkProblems = try await problemRows
            let (warmSources, tierCounts) = try await tierRows
            let spools = try await spoolRows
            let waiting = try await waitingRows
            let elapsed = ContinuousClock.now - started
            let now = Date()

            var filesByState = Dictionary(uniqueKeysWithValues: FileState.allCases.map { ($0.rawValue, Int64(0)) })
            var bytesByState = filesByState
            var perSource: [Int64: [StateRow]] = [:]
            var stored: Int64 = 0
            var savedTranscoding: Int64 = 0
            for row in states {
                filesByState[row.state, default: 0] += row.files
                bytesByState[row.state, default: 0] += row.bytes
                perSource[row.sourceID, default: []].append(row)
                if row.state == "archived" {
                    stored += row.storedBytes
                    savedTranscoding += max(0, row.savedBytes)
                }
            }
            let filesTotal = filesByState.values.reduce(0, +)
            let bytesRaw = bytesByState.values.reduce(0, +)
            let filesDone = Self.doneStates.reduce(0) { $0 + (filesByState[$1] ?? 0) }
            let bytesDone = Self.doneStates.reduce(0) { $0 + (bytesByState[$1] ?? 0) }
            let savedDedupe = bytesByState["duplicate"] ?? 0

            var sources: [SourceStatus] = []
            var bytesExpected: Int64 = 0
            for row in sourcesTable {
                let rows = perSource[row.id] ?? []
                var files = Dictionary(uniqueKeysWithValues: FileState.allCases.map { ($0.rawValue, Int64(0)) })
                var bytes = files
                for stateRow in rows {
                    files[stateRow.state, default: 0] += stateRow.files
                    bytes[stateRow.state, default: 0] += stateRow.bytes
                }
                let filesTotal = files.values.reduce(0, +)
                let bytesTotal = bytes.values.reduce(0, +)
                let done = Self.doneStates.reduce(0) { $0 + (bytes[$1] ?? 0) }
                let doneFiles = Self.doneStates.reduce(0) { $0 + (files[$1] ?? 0) }
                // While the uploader still walks, its count is the better total; afterwards the rows are.
                let expected = row.finishedAt == nil ? max(row.bytesSeen, bytesTotal) : bytesTotal
                bytesExpected += expected
                let pendingBytes = Self.pendingStates.reduce(0) { $0 + (bytes[$1] ?? 0) } + max(0, expected - bytesTotal)
                let rate = rates[row.id].map { Self.rate(bytes: $0.bytes, since: $0.first, now: now) } ?? 0
                let pending = Self.pendingStates.reduce(0) { $0 + (files[$1] ?? 0) }
                let problems = walkProblems[row.id]
                sources.append(SourceStatus(
                    id: row.id, label: row.label, metadata: row.metadata, note: row.note, startedAt: row.startedAt,
                    finishedAt: row.finishedAt, filesSeen: row.filesSeen, bytesSeen: row.bytesSeen,
                    filesTotal: filesTotal, bytesTotal: bytesTotal, filesByState: files, bytesByState: bytes,
                    filesDone: doneFiles, bytesDone: done,
                    progress: Self.ratio(done, expected, empty: row.finishedAt == nil ? 0 : 1),
                    bytesPerSecond: rate,
                    etaSeconds: pendingBytes == 0 ? 0 : (rate > 0 ? Double(pendingBytes) / rate : nil),
                    complete: row.finishedAt != nil && pending == 0 && (files["failed"] ?? 0) == 0 && doneFiles > 0 && problems == nil,
                    walkProblems: problems?.count ?? 0, walkProblemPaths: problems?.sample.map(\.line) ?? [],
                    encryption: row.encryption, videosNotTranscoded: row.videosNotTranscoded,
                    tier: warmSources.contains(row.id) ? SourceTier.warm.rawValue : SourceTier.cold.rawValue,
                    waitingInSpools: (waiting[row.id] ?? [:]).sorted { $0.key.uuidString < $1.key.uuidString }.map { .init(spoolID: $0.key, files: $0.value) }))
            }
            // Rows of sources missing from the list (cannot happen with the foreign key, but never undercount).
            bytesExpected = max(bytesExpected, bytesRaw)
            let overallRate = rates.values.reduce(0.0) { $0 + Self.rate(bytes: $1.bytes, since: $1.first, now: now) }
            let pendingOverall = Self.pendingStates.reduce(0) { $0 + (bytesByState[$1] ?? 0) } + max(0, bytesExpected - bytesRaw)

            let archivedTotal = bytesByState["archived"] ?? 0
            let windowSum = series.points.reduce(0) { $0 + $1.bytes }
            var running = max(0, archivedTotal - windowSum)
            var points: [ArchivedSeries.Point] = []
            for point in series.points {
                running += point.bytes
                points.append(.init(start: point.start, bytes: point.bytes, cumulativeBytes: running))
            }

            return StatusSnapshot(
                generatedAt: now, queryMilliseconds: elapsed.milliseconds, filesTotal: filesTotal,
                filesByState: filesByState, bytesByState: bytesByState, bytesRaw: bytesRaw, bytesStored: stored,
                bytesSaved: savedTranscoding + savedDedupe + compressionSaved, bytesSavedTranscoding: savedTranscoding,
                bytesSavedDedupe: savedDedupe, bytesSavedCompression: compressionSaved, filesDone: filesDone, bytesDone: bytesDone,
                progress: Self.ratio(bytesDone, bytesExpected, empty: 0), bytesPerSecond: overallRate,
                etaSeconds: pendingOverall == 0 ? 0 : (overallRate > 0 ? Double(pendingOverall) / overallRate : nil),
                sources: sources, workers: workers, failures: failures, keptRaw: keptRaw,
                archivedSeries: ArchivedSeries(bucketSeconds: series.bucketSeconds, points: points),
                recentAlerts: recentAlerts, alertsUndelivered: undelivered,
                tiers: Self.tierStatuses(states, warm: warmSources, sourceCounts: tierCounts, classes: tierClasses), spools: spools)
        }
    }

    static func ratio(_ part: Int64, _ whole: Int64, empty: Double) -> Double {
        whole <= 0 ? empty : min(1, max(0, Double(part) / Double(whole)))
    }

    /// Bytes per second since the first archive in the window, over at least a minute (one big file archived a
    /// second ago is not a rate of gigabytes per second).
    static func rate(bytes: Int64, since first: Date, now: Date) -> Double {
        Double(bytes) / max(60, now.timeIntervalSince(first))
    }

    // MARK: Queries

    func readStateRows() async throws -> [StateRow] {
        let rows = try await client.catalogQuery("""
            SELECT source_id, state, count(*)::bigint, coalesce(sum(size_bytes), 0)::bigint,
                   coalesce(sum(coalesce(stored_size_bytes, size_bytes)), 0)::bigint,
                   coalesce(sum(size_bytes - stored_size_bytes) FILTER (WHERE stored_size_bytes IS NOT NULL), 0)::bigint
            FROM objectstoragefiles WHERE state <> 'duplicate' GROUP BY source_id, state
            UNION ALL
            -- Only duplicates need their holder's state (EffectiveState); the rest stays an index-only aggregate.
            SELECT f.source_id, \(unescaped: EffectiveState.sql), count(*)::bigint, coalesce(sum(f.size_bytes), 0)::bigint,
                   coalesce(sum(coalesce(f.stored_size_bytes, f.size_bytes)), 0)::bigint,
                   coalesce(sum(f.size_bytes - f.stored_size_bytes) FILTER (WHERE f.stored_size_bytes IS NOT NULL), 0)::bigint
            FROM objectstoragefiles f \(unescaped: EffectiveState.holderJoin) WHERE f.state = 'duplicate'
            GROUP BY 1, 2
            """, logger: logger)
        var result: [StateRow] = []
        for try await (source, state, files, bytes, stored, saved) in rows.decode((Int64, String, Int64, Int64, Int64, Int64).self) {
            result.append(StateRow(sourceID: source, state: state, files: files, bytes: bytes, storedBytes: stored, savedBytes: saved))
        }
        return result
    }

    struct SourceRow: Sendable {
        var id: Int64
        var label: String
        var metadata: JSONValue
        var note: String?
        var startedAt: Date
        var finishedAt: Date?
        var filesSeen: Int64
        var bytesSeen: Int64
        var encryption: String?
        var videosNotTranscoded: Int64
    }

    /// The newest 500 sources; an encrypted one's untranscoded videos are counted through their partial index
    /// (migration 27), not by reading every row of the source.
    static let sourcesSQL = """
        SELECT id, label, metadata::text, note, started_at, finished_at, files_seen, bytes_seen,
            CASE WHEN encryption IS NULL THEN NULL WHEN encryption->>'scheme' = 'passphrase' THEN 'age, with a passphrase'
                 ELSE 'age, to ' || jsonb_array_length(encryption->'recipients') || ' recipient'
                      || CASE WHEN jsonb_array_length(encryption->'recipients') = 1 THEN '' ELSE 's' END END,
            CASE WHEN encryption IS NULL THEN 0 ELSE (SELECT count(*) FROM objectstoragefiles f
                WHERE f.source_id = sources.id AND f.details ? 'video_not_transcoded' AND f.deleted_at IS NULL) END
        FROM sources ORDER BY started_at DESC, id DESC LIMIT 500
        """

    func readSources() async throws -> [SourceRow] {
        let rows = try await client.catalogQuery(PostgresQuery(unsafeSQL: Self.sourcesSQL), logger: logger)
        var result: [SourceRow] = []
        for try await (id, label, metadata, note, started, finished, files, bytes, encryption, videos) in rows.decode(
            (Int64, String, String, String?, Date, Date?, Int64, Int64, String?, Int64).self) {
            result.append(SourceRow(
                id: id, label: label, metadata: JSONValue.parse(metadata), note: note, startedAt: started, finishedAt: finished,
                filesSeen: files, bytesSeen: bytes, encryption: encryption, videosNotTranscoded: videos))
        }
        return result
    }

    func readWorkers() async throws -> [WorkerStatus] {
        // Held leases per owner: few rows (workers × batch), from the partial lease index.
        var jobs: [UUID: Int64] = [:]
        let held = try await client.catalogQuery("""
            SELECT lease_owner, count(*)::bigint FROM objectstoragefiles
            WHERE state IN ('transcoding', 'archiving') AND lease_expires_at IS NOT NULL GROUP BY lease_owner
            """, logger: logger)
        for try await (owner, count) in held.decode((UUID?, Int64).self) {
            if let owner { jobs[owner] = count }
        }
        let deadSeconds = deadAfter.seconds
        let rows = try await client.catalogQuery("""
            SELECT id, role, host, pid, version, started_at, heartbeat_at, stopped_at, stop_reason,
                   extract(epoch FROM now() - heartbeat_at)::float8
            FROM workers
            WHERE (stopped_at IS NULL AND heartbeat_at > now() - interval '1 day') OR stopped_at > now() - interval '1 hour'
            ORDER BY stopped_at IS NULL DESC, heartbeat_at DESC LIMIT 100
            """, logger: logger)
        var result: [WorkerStatus] = []
        for try await (id, role, host, pid, version, started, heartbeat, stopped, reason, age) in rows.decode(
            (UUID, String, String, Int?, String?, Date, Date, Date?, String?, Double).self) {
            let health: WorkerStatus.Health = stopped != nil ? .stopped : (age > deadSeconds ? .dead : .alive)
            result.append(WorkerStatus(
                id: id, role: role, host: host, pid: pid, version: version, startedAt: started, heartbeatAt: heartbeat,
                heartbeatAgeSeconds: age, stoppedAt: stopped, stopReason: reason, status: health, jobs: jobs[id] ?? 0))
        }
        return result
    }

    func readFailures() async throws -> [FailureStatus] {
        let rows = try await client.catalogQuery("""
            SELECT f.id, s.label, f.path, f.state, f.error, f.attempts, f.updated_at
            FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
            WHERE f.state IN ('failed', 'unreadable') ORDER BY f.updated_at DESC LIMIT 15
            """, logger: logger)
        var result: [FailureStatus] = []
        for try await (id, label, path, state, error, attempts, updated) in rows.decode(
            (Int64, String, String, String, String?, Int, Date).self) {
            result.append(FailureStatus(fileID: id, source: label, path: path, state: state, error: error, attempts: attempts, updatedAt: updated))
        }
        return result
    }

    /// Videos archived raw: the count and the latest few with their reasons, through their partial index
    /// (migration 26, whose predicate is this statement's); the window count comes with the rows in one query.
    static func keptRawSQL(limit: Int) -> String {
        """
        SELECT count(*) OVER ()::bigint, f.id, s.label, f.path, f.state,
               (CASE WHEN f.details ? 'kept_raw' THEN f.details->'kept_raw'
                     ELSE jsonb_build_array('the transcode failed: ' || (f.details->>'transcode_failed')) END)::text,
               f.updated_at
        FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
        WHERE f.kind = 'video' AND f.deleted_at IS NULL AND (f.details ? 'kept_raw' OR f.details ? 'transcode_failed')
        ORDER BY f.updated_at DESC, f.id DESC LIMIT \(limit)
        """
    }

    func readKeptRaw(limit: Int = 10) async throws -> KeptRawStatus {
        let rows = try await client.catalogQuery(PostgresQuery(unsafeSQL: Self.keptRawSQL(limit: limit)), logger: logger)
        var count: Int64 = 0
        var latest: [KeptRawStatus.File] = []
        for try await (total, id, label, path, state, reasons, updated) in rows.decode((Int64, Int64, String, String, String, String, Date).self) {
            count = total
            let list = (try? JSONDecoder().decode([String].self, from: Data(reasons.utf8))) ?? [reasons]
            latest.append(KeptRawStatus.File(fileID: id, source: label, path: path, state: state, reasons: list, updatedAt: updated))
        }
        return KeptRawStatus(count: count, latest: latest)
    }

    func readRecentRates() async throws -> [Int64: (bytes: Int64, first: Date)] {
        let rows = try await client.catalogQuery("""
            SELECT source_id, coalesce(sum(size_bytes), 0)::bigint, min(archived_at)
            FROM objectstoragefiles
            WHERE archived_at IS NOT NULL AND archived_at >= now() - make_interval(secs => \(rateWindow.seconds))
            GROUP BY source_id
            """, logger: logger)
        var result: [Int64: (bytes: Int64, first: Date)] = [:]
        for try await (source, bytes, first) in rows.decode((Int64, Int64, Date).self) {
            result[source] = (bytes, first)
        }
        return result
    }

    /// Bytes archived per bucket in the window (raw sizes), oldest first, empty buckets included.
    func readArchivedBuckets() async throws -> (bucketSeconds: Double, points: [(start: Date, bytes: Int64)]) {
        var first: Date?
        var now = Date()
        let bounds = try await client.catalogQuery(
            "SELECT min(archived_at), now() FROM objectstoragefiles WHERE archived_at IS NOT NULL", logger: logger)
        for try await (minimum, current) in bounds.decode((Date?, Date).self) {
            first = minimum
            now = current
        }
        guard let first else { return (0, []) }
        let windowStart = max(first, now.addingTimeInterval(-chartWindow.seconds))
        // A round bucket (5 min, 1 h…) aligned to the epoch, so that the bars stay put between refreshes.
        let span = max(60, now.timeIntervalSince(windowStart))
        let niceBuckets: [Double] = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
        let bucket = niceBuckets.first { $0 >= span / Double(chartBuckets) } ?? 86400
        let origin = Date(timeIntervalSince1970: (windowStart.timeIntervalSince1970 / bucket).rounded(.down) * bucket)
        let rows = try await client.catalogQuery("""
            SELECT date_bin(make_interval(secs => \(bucket)), archived_at, \(origin)) AS b, coalesce(sum(size_bytes), 0)::bigint
            FROM objectstoragefiles
            WHERE archived_at IS NOT NULL AND archived_at >= \(origin)
            GROUP BY b ORDER BY b
            """, logger: logger)
        var sums: [Int: Int64] = [:]
        for try await (start, bytes) in rows.decode((Date, Int64).self) {
            sums[Int(((start.timeIntervalSince(origin)) / bucket).rounded())] = bytes
        }
        let count = max(1, Int((now.timeIntervalSince(origin) / bucket).rounded(.down)) + 1)
        let points = (0..<count).map { index in
            (start: origin.addingTimeInterval(Double(index) * bucket), bytes: sums[index] ?? 0)
        }
        return (bucket, points)
    }

    func readBundleCompression() async throws -> Int64 {
        let rows = try await client.catalogQuery("""
            SELECT coalesce(sum(greatest(raw_bytes - stored_bytes, 0)), 0)::bigint FROM bundles
            WHERE state = 'archived' AND stored_bytes IS NOT NULL
            """, logger: logger)
        for try await saved in rows.decode(Int64.self) { return saved }
        return 0
    }

    func readAlerts() async throws -> ([AlertStatus], Int64) {
        let rows = try await client.catalogQuery("""
            SELECT kind, message, created_at, delivered_at, attempts, last_error FROM alerts ORDER BY id DESC LIMIT 8
            """, logger: logger)
        var result: [AlertStatus] = []
        for try await (kind, message, created, delivered, attempts, error) in rows.decode((String, String, Date, Date?, Int, String?).self) {
            result.append(AlertStatus(kind: kind, message: message, createdAt: created, deliveredAt: delivered, attempts: attempts, lastError: error))
        }
        var undelivered: Int64 = 0
        let count = try await client.catalogQuery(
            "SELECT count(*)::bigint FROM alerts WHERE delivered_at IS NULL AND next_attempt_at < 'infinity'", logger: logger)
        for try await value in count.decode(Int64.self) { undelivered = value }
        return (result, undelivered)
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
