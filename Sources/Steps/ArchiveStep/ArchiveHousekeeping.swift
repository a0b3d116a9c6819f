import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO
import Synchronization
import JobQueue

/// Between batches: remove objects that transactions made unneeded, clean up after dead workers, carry out
/// delete requests, sign download URLs, restore and cache what the browser asked for (`BrowserRestoreCaching`),
/// refresh the catalog export, and run the due maintenance tasks.
extension ArchiveHandler {
    public func housekeeping(context: JobContext, drained: Bool) async throws {
        // Before `--once` exits or the worker stops: the last bundle's staging copies are removed, not left running.
        if drained { await finishRemovals() }
        let catalog = ArchiveCatalog(client: context.client, logger: context.logger)
        let now = ContinuousClock.now
        let leftoverAge = configuration.leftoverAge
        let (sweepDue, exportDue, leftoversDue) = housekeepingState.state.withLock { state -> (Bool, Bool, Bool) in
            let sweep = drained || state.lastSweep.map { now - $0 >= .seconds(60) } ?? true
            if sweep { state.lastSweep = now }
            let leftovers = sweep && (state.lastLeftoverSweep.map { now - $0 >= leftoverAge } ?? true)
            if leftovers { state.lastLeftoverSweep = now }
            let export = state.archivedSinceExport && (drained || state.lastExport.map { now - $0 >= configuration.catalogExportInterval } ?? true)
            if export {
                state.lastExport = now
                state.archivedSinceExport = false
            }
            return (sweep, export, leftovers)
        }
        if sweepDue {
            let processed = try await DeleteRequests(client: context.client, logger: context.logger).processDue(grace: configuration.deleteGrace)
            if !processed.isEmpty { housekeepingState.noteArchived() }
            try await rewriteBundles(catalog: catalog, logger: context.logger)
            // Archived bundles lose their last member through deletes; the hourly pass (with the leftovers) is
            // for the rest (a crash between the deletes and this line, members gone by hand).
            for bundle in try await catalog.retireUnusedBundles(archivedToo: !processed.isEmpty || leftoversDue) {
                context.logger.info("bundle retired: no live file needs it (its members are archived elsewhere or deleted)", metadata: ["bundle.id": "\(bundle)"])
            }
            try await removeOrphanBundles(catalog: catalog, logger: context.logger)
            try await removeQueuedObjects(catalog: catalog, logger: context.logger)
            let signed = try await SignedURLRefresh.run(
                catalog: SignedURLCatalog(client: context.client, logger: context.logger), staging: staging, archive: archive, logger: context.logger)
            if signed > 0 { context.logger.debug("download URLs signed", metadata: ["files": "\(signed)"]) }
            _ = try await BrowserRestoreCaching(
                catalog: BrowserRestoreCatalog(client: context.client, logger: context.logger),
                restoreRequests: RestoreCatalog(client: context.client, logger: context.logger), archive: archive, staging: staging,
                workDirectory: configuration.workDirectory, logger: context.logger
            ).run()
        }
        if leftoversDue {
            do {
                let removed = try await removeOrphanedImageMaps(client: context.client, logger: context.logger)
                if removed > 0 { context.logger.notice("swept staging leftovers", metadata: ["staging.image_maps_removed": "\(removed)"]) }
            } catch {
                // Leftovers cost only space: the next sweep tries again; archiving goes on meanwhile.
                context.logger.warning("sweeping staging leftovers failed; retried in an hour", metadata: ["error": "\(CatalogDatabase.describe(error))"])
            }
        }
        if exportDue || (drained && housekeepingState.state.withLock { $0.archivedSinceExport }) {
            do {
                let policy = CatalogExportPolicy(compactFraction: configuration.catalogExportCompactFraction)
                let exported = try await CatalogExport(
                    client: context.client, archive: archive, workDirectory: configuration.workDirectory, policy: policy, logger: context.logger,
                    crashAfterUpload: configuration.crashPoint == .exportUploaded).run()
                if let exported {
                    context.logger.info(exported.whole ? "catalog export written whole" : "catalog export brought up to date (changed rows)", metadata: [
                        "export.key": "\(exported.key)", "export.rows": "\(exported.rows)"])
                }
            } catch {
                housekeepingState.noteArchived()
                context.logger.warning("catalog export failed; retried after the next batch", metadata: ["error": "\(CatalogDatabase.describe(error))"])
            }
        }
        // The scheduled maintenance tasks that are due (they record their own failures).
        await betweenBatches?.runDue(context: context)
    }

    /// Empties `pending_object_deletes`: objects whose content is archived elsewhere or whose file was deleted.
    /// An object a live row still reads is kept (and the entry dropped), so a wrong entry never loses data.
    func removeQueuedObjects(catalog: ArchiveCatalog, logger: Logger) async throws {
        while true {
            let pending = try await catalog.pendingDeletes(olderThan: .zero, limit: 500)
            if pending.isEmpty { return }
            var done: [StorageArea: [String]] = [:]
            var removable: [StorageArea: [String]] = [:]
            for entry in pending {
                if entry.stillReferenced {
                    logger.warning("not removing an object a file still uses", metadata: ["storage.area": "\(entry.area.rawValue)", "storage.key": "\(entry.key)"])
                } else {
                    removable[entry.area, default: []].append(entry.key)
                }
                done[entry.area, default: []].append(entry.key)
            }
            var firstFailure: (any Error)?
            for (area, keys) in removable {
                let failures = await (area == .archive ? archive : staging).delete(keys: keys)
                done[area]?.removeAll { failures[$0] != nil }
                firstFailure = firstFailure ?? failures.sorted { $0.key < $1.key }.first?.value
            }
            for (area, keys) in done { try await catalog.finishDeletes(area: area, keys: keys) }
            // What could not be removed stays queued for the next sweep.
            if let firstFailure { throw firstFailure }
            if pending.count < 500 { return }
        }
    }

    /// Bundles a dead worker left `uploading`: no file points at them, so they are given up and their objects
    /// queued for removal (`removeQueuedObjects`, next in the sweep). Should the worker only have been slow, its
    /// record of the bundle is refused (`fenced`) and its files go back to the queue.
    func removeOrphanBundles(catalog: ArchiveCatalog, logger: Logger) async throws {
        for orphan in try await catalog.giveUpOrphanBundles(staleAfter: configuration.orphanAfter) {
            logger.warning("gave up a bundle its worker left unfinished; its objects are removed", metadata: [
                "bundle.id": "\(orphan.id)", "archive.key": "\(orphan.archiveKey)"])
        }
        // Multipart uploads of dead workers hold billed parts; a day is far longer than any live upload waits.
        for prefix in ["bundles/", "files/"] {
            let aborted = try await archive.abortMultipartUploads(prefix: prefix, initiatedBefore: Date().addingTimeInterval(-86_400))
            if aborted > 0 { logger.warning("aborted abandoned multipart uploads", metadata: ["uploads": "\(aborted)", "prefix": "\(prefix)"]) }
        }
    }
}
