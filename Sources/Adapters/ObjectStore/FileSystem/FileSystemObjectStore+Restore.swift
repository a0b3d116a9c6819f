import Foundation
import PipelineCore
import SystemIO

// MARK: Restore

extension FileSystemObjectStore {
    public func requestRestore(_ key: String, days: Int, tier: RestoreTier) async throws -> RestoreRequestOutcome {
        _ = try mapping.validate(key, operation: "RestoreObject")
        let mapping = self.mapping
        let location = describe(key)
        let durable = configuration.durable
        let delay = TimeInterval(configuration.restoreDelay.components.seconds)
            + TimeInterval(configuration.restoreDelay.components.attoseconds) / 1e18
        return try await blocking { () throws -> RestoreRequestOutcome in
            guard let info = try POSIXFile.status(path: mapping.objectPath(key)), POSIXFile.isRegularFile(info) else {
                throw ObjectStoreError(.notFound, operation: "RestoreObject", location: location, message: "no such key",
                                       serverCode: "NoSuchKey")
            }
            guard var sidecar = Self.sidecar(for: key, info: info, mapping: mapping),
                  StorageClass(rawValue: sidecar.storageClass)?.needsRestoreBeforeRead == true else {
                throw ObjectStoreError(.invalidObjectState, operation: "RestoreObject", location: location,
                                       message: "restore is only for GLACIER and DEEP_ARCHIVE objects",
                                       serverCode: "InvalidObjectState")
            }
            let now = Date()
            if let ready = sidecar.restoreReadyAt, ready > now, sidecar.restoredUntil.map({ $0 > now }) == true {
                return .alreadyInProgress
            }
            let wasRestored = sidecar.restoredUntil.map { $0 > now } ?? false
            // Restores here finish at once (or after `restoreDelay`); the expiry counts from completion, as S3's does.
            let ready = wasRestored ? now : now.addingTimeInterval(delay)
            sidecar.restoreReadyAt = delay > 0 && !wasRestored ? ready : nil
            sidecar.restoredUntil = ready.addingTimeInterval(TimeInterval(max(1, days)) * 86_400)
            let data = try ObjectSidecar.encoder.encode(sidecar)
            if durable {
                try AtomicFile.write(data, to: mapping.sidecarPath(key))
            } else {
                try data.write(to: URL(fileURLWithPath: mapping.sidecarPath(key)))
            }
            return wasRestored ? .alreadyRestored : .started
        }
    }
}
