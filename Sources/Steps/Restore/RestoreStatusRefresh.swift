import Catalog
import Foundation
import ObjectStore

/// Asks the archive (HEAD) about every restore request not yet expired and records what it says: a restored copy
/// makes the request `ready` with its `restored_until`, a copy gone again makes a ready one `expired`. Used by
/// `uploader restore-status` and the scheduled `refresh-restore-status` task.
public enum RestoreStatusRefresh {
    /// Every request as it stands after the refresh (expired ones included).
    public static func run(catalog: RestoreCatalog, archive: any ObjectStore) async throws -> [RecordedRestoreRequest] {
        var result: [RecordedRestoreRequest] = []
        for request in try await catalog.restoreRequests() {
            var request = request
            if request.state != "expired", let info = try await archive.head(request.archiveKey) {
                switch info.restore {
                case .restored(let until):
                    try await catalog.updateRestoreState(key: request.archiveKey, state: "ready", restoredUntil: until)
                    request.state = "ready"
                    request.restoredUntil = until ?? request.restoredUntil
                case .notArchived:
                    try await catalog.updateRestoreState(key: request.archiveKey, state: "ready", restoredUntil: nil)
                    request.state = "ready"
                case .archived where request.state == "ready":
                    try await catalog.updateRestoreState(key: request.archiveKey, state: "expired", restoredUntil: nil)
                    request.state = "expired"
                default:
                    break
                }
            }
            result.append(request)
        }
        return result
    }
}
