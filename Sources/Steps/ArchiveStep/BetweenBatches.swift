import JobQueue

/// Work of another step that the archiver does between batches, from its housekeeping: the scheduled maintenance
/// tasks (Steps/Maintenance). The program hands it in (`ArchiveHandler.betweenBatches`), so that ArchiveStep does
/// not depend on the steps that work uses (Restore). It must not throw: its failures are its own to record, and
/// archiving goes on.
public protocol BetweenBatchesWork: Sendable {
    func runDue(context: JobContext) async
}
