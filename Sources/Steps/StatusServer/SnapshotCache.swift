import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import Alerts
import SystemIO
import Catalog

/// A read of the whole catalog that routes serve to everyone: the status page's `StatusSnapshot`, the family
/// pages' per-source counts (`SourceStateCounts`).
///
/// Such a read costs a scan of every row (about half a second at 1,000,000 rows on a small machine), so requests
/// do not each pay for it: a snapshot younger than `maxAge` is served as it is; an older one
/// (up to `maxStale`) is served at once while one refresh runs in the background; only without a usable snapshot
/// does a request wait for the read. `SnapshotRefresher` keeps it fresh while someone is looking, so the page
/// and scrapers normally never wait. Concurrent reads are shared. `maxAge` zero reads on every request.
actor SnapshotCache<Snapshot: Sendable> {
    let read: @Sendable () async throws -> Snapshot
    let maxAge: Duration
    let maxStale: Duration
    private var current: (snapshot: Snapshot, at: ContinuousClock.Instant)?
    private var inFlight: Task<Snapshot, any Error>?
    private var lastDemand: ContinuousClock.Instant?
    private var lastReadDuration: Duration = .zero

    init(maxAge: Duration, maxStale: Duration = .seconds(60), read: @escaping @Sendable () async throws -> Snapshot) {
        self.read = read
        self.maxAge = maxAge
        self.maxStale = max(maxStale, maxAge)
    }

    func snapshot() async throws -> Snapshot {
        lastDemand = .now
        if maxAge > .zero, let current {
            let age = ContinuousClock.now - current.at
            if age < maxAge { return current.snapshot }
            if age < maxStale {
                refreshInBackground()
                return current.snapshot
            }
        }
        return try await refresh()
    }

    /// One read of the catalog, shared by everyone who asks while it runs.
    func refresh() async throws -> Snapshot {
        if let inFlight { return try await inFlight.value }
        let read = self.read
        let task = Task { try await read() }
        inFlight = task
        let started = ContinuousClock.now
        defer { inFlight = nil }
        let snapshot = try await task.value
        lastReadDuration = ContinuousClock.now - started
        current = (snapshot, .now)
        return snapshot
    }

    private func refreshInBackground() {
        guard inFlight == nil else { return }
        Task { _ = try? await self.refresh() }
    }

    /// For the refresher: re-reads when someone asked in the last minute and the snapshot is due.
    func tick() async {
        guard maxAge > .zero, let lastDemand, ContinuousClock.now - lastDemand < .seconds(60) else { return }
        if let current, ContinuousClock.now - current.at < maxAge { return }
        _ = try? await refresh()
    }

    /// How long the refresher waits between looks: `maxAge`, but never less than five reads' time, so that a slow
    /// catalog is not kept busy by the status page.
    var refreshInterval: Duration {
        max(maxAge, lastReadDuration * 5, .milliseconds(500))
    }
}
