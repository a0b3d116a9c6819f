import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import Upload

/// Stores complete browser uploads, one at a time, exactly as `uploader upload` stores a file it walks
/// (`UploadRun.storeOneFile`: SHA-256, dedupe, versions, the resumable upload into staging, the row only once the
/// bytes are safe), then marks the upload stored — which ends the source's browser run when it was the last open
/// one — and removes the partial file.
///
/// A `Service` of the status application: woken by the PATCH that brings an upload's last byte, and every few
/// seconds in case a wake was missed; at start it takes up what a previous server left `storing`. A failure (staging
/// unreachable) keeps the upload `storing` with its error, tried again later with a growing delay; a claim is a lease
/// in the catalog, so a server that died mid-way is replaced after it runs out.
final class BrowserUploadStorer: Service, Sendable {
    let catalog: BrowserUploadCatalog
    let ingest: IngestCatalog
    let staging: any ObjectStore
    let partials: PartialUploads
    /// Uploads idle this long expire (`BrowserUploadSettings.expireAfter`).
    let expireAfter: Duration
    let logger: Logger
    private let wakes: AsyncStream<Void>
    private let waker: AsyncStream<Void>.Continuation
    static let idlePoll: Duration = .seconds(5)
    static let lease: Duration = .seconds(900)

    init(client: PostgresClient, staging: any ObjectStore, partials: PartialUploads, expireAfter: Duration, logger: Logger) {
        self.expireAfter = expireAfter
        self.catalog = BrowserUploadCatalog(client: client, logger: logger)
        self.ingest = IngestCatalog(client: client, logger: logger)
        self.staging = staging
        self.partials = partials
        self.logger = logger
        (wakes, waker) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// An upload became complete: look now rather than at the next poll.
    func wake() { waker.yield() }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var iterator = self.wakes.makeAsyncIterator()
            var lastExpiry: ContinuousClock.Instant?
            while !Task.isCancelled {
                if lastExpiry.map({ ContinuousClock.now - $0 >= min(.seconds(60), self.expireAfter / 10) }) ?? true {
                    lastExpiry = .now
                    await self.removeExpired()
                }
                do {
                    while !Task.isCancelled, let upload = try await self.catalog.claimDue(lease: Self.lease) {
                        await self.store(upload)
                    }
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("browser uploads: cannot look for complete uploads", metadata: ["error": "\(error)"])
                }
                // The next wake, or the poll interval, whichever comes first.
                let waker = self.waker
                let timer = Task {
                    try? await Task.sleep(for: Self.idlePoll)
                    waker.yield()
                }
                _ = await iterator.next()
                timer.cancel()
            }
        }
    }

    /// Removes uploads that got no byte for `expireAfter`: the rows first (so no client can resume into a file that
    /// is going), then their partial files. A failure is logged and tried again at the next pass.
    func removeExpired() async {
        do {
            for id in try await catalog.expire(idle: expireAfter) {
                try? await partials.remove(id)
                logger.notice("browser upload expired: no byte arrived for too long; its partial file was removed", metadata: ["upload.id": "\(id)"])
            }
        } catch {
            logger.warning("browser uploads: cannot remove expired uploads", metadata: ["error": "\(error)"])
        }
    }

    /// Stores one complete upload; never throws (a failure is recorded on the upload and retried).
    func store(_ upload: BrowserUpload) async {
        let metadata: Logger.Metadata = ["upload.id": "\(upload.id)", "source.id": "\(upload.sourceID)"]
        do {
            // The partial file must hold exactly the upload's bytes; one that lost some (a new disk) sends the
            // client back for them instead of storing a hole.
            let held = try await partials.reconcile(upload.id, received: upload.length)
            guard held == upload.length else {
                try await catalog.rewind(id: upload.id, to: held)
                logger.warning("browser uploads: a complete upload's partial file lost bytes; its client is asked for them again", metadata: metadata)
                return
            }
            var configuration = UploadConfiguration(label: upload.sourceLabel, concurrency: 1)
            configuration.putOptions.maxPartsInFlight = 2
            let run = UploadRun(
                catalog: ingest, staging: staging, configuration: configuration, progress: UploadProgress(style: .silent) { _ in }, logger: logger)
            let stored = try await run.storeOneFile(
                at: partials.path(upload.id), path: upload.path, size: upload.length, modifiedAt: upload.modifiedAt, sourceID: upload.sourceID)
            let finished = try await catalog.stored(id: upload.id, sourceID: upload.sourceID, fileID: stored.fileID, outcome: stored.outcome)
            try await partials.remove(upload.id)
            logger.info("browser upload stored", metadata: metadata.merging([
                "upload.outcome": "\(stored.outcome)", "file.id": "\(stored.fileID.map(String.init) ?? "-")", "source.finished": "\(finished)",
            ]) { $1 })
        } catch {
            let delay = Duration.seconds(min(3600, 15 << min(upload.attempts, 8)))
            logger.warning("browser uploads: storing failed, trying again later", metadata: metadata.merging([
                "error": "\(error)", "retry.in_seconds": "\(delay.components.seconds)",
            ]) { $1 })
            try? await catalog.retryLater(id: upload.id, error: String(describing: error), delay: delay)
        }
    }
}
