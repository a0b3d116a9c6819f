import ArchiveFormat
import Catalog
import PipelineCore
import SystemIO

extension RestoreRun {
    /// Opens every encrypted source among the files asked for, before anything is downloaded or written: a
    /// missing or wrong identity is one clear error naming the source, and the destination stays untouched.
    func attachDecryption(_ objects: [ObjectJob], locations: [CatalogFileLocation]) async throws -> [ObjectJob] {
        // Only the sources of files that will be written: a --path that matches nothing of an encrypted source
        // needs no key for it.
        let encrypted = Set(objects.flatMap(\.files).map(\.location).filter(\.encrypted).map(\.sourceID))
        guard !encrypted.isEmpty else { return objects }
        let unlocks = try await Self.unlock(sourceIDs: encrypted, locations: locations, catalog: catalog, keyring: configuration.keyring)
        return objects.map { object in
            var object = object
            object.files = object.files.map { job in
                var job = job
                if job.location.encrypted, let unlock = unlocks[job.location.sourceID] {
                    job.decryption = FileDecryption(unlock: unlock, plaintextSize: job.location.originalSize, keyedHash: job.location.originalHash ?? "")
                }
                return job
            }
            return object
        }
    }

    static func unlock(sourceIDs: Set<Int64>, locations: [CatalogFileLocation], catalog: RestoreCatalog,
                       keyring: SourceKeyring) async throws -> [Int64: SourceUnlock] {
        let records = try await catalog.encryptionRecords(sourceIDs: Array(sourceIDs))
        let labels = Dictionary(locations.map { ($0.sourceID, $0.sourceLabel) }) { first, _ in first }
        var unlocks: [Int64: SourceUnlock] = [:]
        for id in sourceIDs.sorted() {
            let label = labels[id] ?? "#\(id)"
            guard let text = records[id] else { throw RestoreError(.catalog, "source '\(label)' is marked encrypted but has no encryption record") }
            do {
                let record = try SourceEncryptionRecord.decode(text)
                // A passphrase costs a second of scrypt: on the thread pool, never on the cooperative pool.
                unlocks[id] = try await blocking { try keyring.unlock(record) }
            } catch let error as EncryptionError {
                throw RestoreError(.wrongIdentity, "source '\(label)': \(error); nothing was restored")
            }
        }
        return unlocks
    }
}
