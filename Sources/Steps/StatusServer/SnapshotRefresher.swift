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

/// Keeps a snapshot fresh in the background while the pages that serve it are being looked at.
struct SnapshotRefresher<Snapshot: Sendable>: Service {
    let cache: SnapshotCache<Snapshot>

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await cache.tick()
                try? await Task.sleep(for: await cache.refreshInterval)
            }
        }
    }
}
