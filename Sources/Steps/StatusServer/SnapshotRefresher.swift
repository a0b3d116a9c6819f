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

/// Keeps the snapshot fresh in the background while the page is being looked at.
struct SnapshotRefresher: Service {
    let cache: SnapshotCache

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await cache.tick()
                try? await Task.sleep(for: await cache.refreshInterval)
            }
        }
    }
}
