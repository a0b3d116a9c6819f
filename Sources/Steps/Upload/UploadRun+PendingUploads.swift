import Catalog
import Foundation
import Logging
import ObjectStore
import SystemIO

/// A large file's upload in parts survives the run that began it (`PendingUploads` in the catalog).
extension UploadRun {
    /// The pending upload to continue (same size and time as now), or a new one.
    func pendingUpload(for file: IngestedFile) async throws -> PendingUpload {
        if let pending = try await catalog.pendingUpload(sourceID: file.sourceID, path: file.path) {
            if pending.sizeBytes == file.sizeBytes, Self.sameTime(pending.modifiedAt, file.modifiedAt) {
                logger.info("resuming an interrupted upload", metadata: ["ingest.path": "\(file.path)"])
                return pending
            }
            // The file changed since the interrupted attempt: its partial upload is worthless.
            try await discard(pending)
        }
        return try await catalog.beginPendingUpload(
            sourceID: file.sourceID, path: file.path, sizeBytes: file.sizeBytes, modifiedAt: file.modifiedAt,
            stagingKey: Self.newStagingKey(sourceID: file.sourceID, encrypted: encryption.value != nil))
    }

    /// Aborts a pending upload's multipart upload, deletes its object, and forgets it.
    func discard(_ pending: PendingUpload) async throws {
        if let json = pending.multipartState,
           let state = try? JSONDecoder.journal.decode(MultipartUploadState.self, from: Data(json.utf8)) {
            try await staging.abortMultipartUpload(pending.stagingKey, uploadID: state.uploadID)
        }
        try await staging.delete(pending.stagingKey)
        try await catalog.dropPendingUpload(id: pending.id)
    }
}
