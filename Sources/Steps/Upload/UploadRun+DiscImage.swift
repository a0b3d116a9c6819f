import Catalog
import Foundation
import ObjectStore
import PipelineCore
import SourceReading
import SystemIO

/// What `uploader image` did.
public struct DiscImageReport: Sendable {
    public var result: DiscImageResult
    public var outcome: String
    public var elapsed: Duration
}

extension UploadRun {
    /// Keeps a whole disc (or an image file) as one ISO image of kind `disc_image`: read in 2048-byte sectors
    /// like ddrescue, streamed into staging (bounded memory for a 50 GB Blu-ray), with the map of unreadable
    /// sectors stored next to it. An image with unreadable sectors is recorded as degraded, never as clean.
    public func runDiscImage(device devicePath: String, imageName: String, imagerConfiguration: DiscImagerConfiguration = .init()) async throws -> DiscImageReport {
        let started = ContinuousClock.now
        let device = try await FileSectorDevice.open(RawPath(devicePath))
        await progress.planned(files: 1, bytes: device.byteCount)
        let sourceID = try await openSource(origin: devicePath)
        await progress.fileStarted(imageName)

        let stream = try DiscImager(device: device, configuration: imagerConfiguration).stream()
        let file = IngestedFile(
            sourceID: sourceID, path: imageName, rawPath: nil, name: imageName, sizeBytes: device.byteCount,
            modifiedAt: nil, kind: .discImage, details: ["device": devicePath])
        let staging = self.staging
        let mapKey = LockedBox<String?>(nil)
        let outcome = try await store(file, source: .stream(CountingChunks(base: stream, progress: progress), length: device.byteCount), read: device.byteCount) { row, key in
            guard let result = stream.result else {
                throw IngestError(.readFailed, path: devicePath, "the image stream ended without a result")
            }
            row.degraded = !result.isClean
            row.details["bad_bytes"] = String(result.badBytes)
            row.details["recovered_sectors"] = String(result.recoveredSectors)
            row.details["rescue_map_key"] = key + ".map"
            mapKey.value = key + ".map"
            if let spool = staging as? SpoolStore {
                // Into the spool even when it is full: waiting for room here would wait for ever (see putBeside).
                try await spool.putBeside(key + ".map", bytes: Array(result.mapfile.utf8))
            } else {
                _ = try await staging.put(key + ".map", bytes: Array(result.mapfile.utf8))
            }
            if configuration.testCrashAfterImageMap { kill(getpid(), SIGKILL) }
        }
        switch outcome {
        case .duplicate, .unchanged:
            // The image's copy was dropped (its content is stored already); its map goes with it.
            if let key = mapKey.value { try await staging.delete(key) }
        default:
            break
        }
        guard let result = stream.result else {
            throw IngestError(.readFailed, path: devicePath, "the image stream ended without a result")
        }
        var report = UploadReport()
        report.filesSeen = 1
        report.bytesSeen = device.byteCount
        _ = try await finishSource(sourceID, report: report)
        let outcomeText: String =
            switch outcome {
            case .staged where catalog.spoolID != nil: result.isClean ? "spooled" : "spooled (degraded)"
            case .staged: result.isClean ? "staged" : "staged (degraded)"
            case .duplicate: "duplicate of an image already stored"
            case .unchanged, .checkedUnchanged: "unchanged (this image is already catalogued)"
            case .unreadable, .planned, .suspectedBitRot: "not stored"
            }
        return DiscImageReport(result: result, outcome: outcomeText, elapsed: ContinuousClock.now - started)
    }
}
