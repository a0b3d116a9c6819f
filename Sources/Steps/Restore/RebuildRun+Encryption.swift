import AgeEncryption
import ArchiveFormat
import Catalog
import Foundation
import PipelineCore

/// What a rebuild knows of encrypted sources: their records (from the export, then from bundle manifests) and the
/// identities that open their sealed placements. The user's keys are asked for only when an encrypted source is
/// met; without them the rebuild stops before anything is committed. Used by the one task of a rebuild, in its
/// transaction's order (hence unchecked: nothing runs it concurrently).
final class EncryptedRebuild: @unchecked Sendable {
    let keyring: SourceKeyring
    private(set) var records: [Int64: String] = [:]
    private var unlocked: [Int64: SourceUnlock] = [:]

    init(keyring: SourceKeyring) { self.keyring = keyring }

    func learn(_ records: [Int64: String]) {
        for (id, record) in records where self.records[id] == nil { self.records[id] = record }
    }

    /// Opens every known encrypted source; throws (naming the source) when the keys given do not.
    func unlockAll() throws {
        for (id, text) in records.sorted(by: { $0.key < $1.key }) where unlocked[id] == nil {
            do {
                unlocked[id] = try keyring.unlock(try SourceEncryptionRecord.decode(text))
            } catch let error as EncryptionError {
                throw RestoreError(.wrongIdentity, "the archive holds encrypted source #\(id): \(error); nothing was rebuilt")
            }
        }
    }

    /// The placement sealed in `text`, opened with any known source's identities.
    func open(_ text: String) throws -> SealedPlacement {
        try unlockAll()
        var identities = unlocked.values.flatMap(\.fileIdentities)
        identities += keyring.identities.map { AgeIdentity.x25519($0) }
        do {
            return try SealedText.open(json: text, as: SealedPlacement.self, with: identities)
        } catch {
            throw RestoreError(.wrongIdentity, "an encrypted file's placement cannot be opened with the keys given (\(error)); nothing was rebuilt")
        }
    }

    func sealedSource(_ id: Int64) throws -> SealedSource? {
        guard let text = records[id], let unlock = unlocked[id] else { return nil }
        let record = try SourceEncryptionRecord.decode(text)
        return try SealedText.open(json: record.sealedSource, as: SealedSource.self, with: unlock.fileIdentities)
    }
}

extension RebuildRun {
    /// A bundle member or single object of an encrypted source, placed from its sealed placement: its source is
    /// created from a record the manifest carries when the export did not have it.
    func recoverEncrypted(_ sealed: String, encrypted: EncryptedRebuild, session: RebuildSession, base: RecoveredFile) async throws -> (RecoveredFile, Int64)? {
        let placement = try encrypted.open(sealed)
        guard let record = encrypted.records[placement.sourceID] else { return nil }
        try await session.ensureEncryptedSource(id: placement.sourceID, record: record)
        var file = base
        file.sourceLabel = ""
        file.path = "encrypted/\(file.fileID)"
        file.name = ""
        file.originalSize = placement.size
        file.modifiedAt = nil
        file.detailsJSON = String(decoding: try JSONSerialization.data(withJSONObject: [
            "rebuilt_from": base.bundleID == nil ? "archive object metadata" : "manifest", "encryption": "age", "sealed": sealed,
        ]), as: UTF8.self)
        return (file, placement.sourceID)
    }

    /// The last step: every encrypted source gets its label back and every sealed file its name, path and time.
    func unsealAll(_ session: RebuildSession, encrypted: EncryptedRebuild) async throws {
        encrypted.learn(try await session.encryptedSources())
        guard !encrypted.records.isEmpty else { return }
        try encrypted.unlockAll()
        for id in encrypted.records.keys.sorted() {
            guard let source = try encrypted.sealedSource(id) else { continue }
            let metadata = String(decoding: try JSONEncoder().encode(source.metadata), as: UTF8.self)
            try await session.unsealSource(id: id, label: source.label, note: source.note, origin: source.origin, metadataJSON: metadata)
        }
        var batch: [UnsealedPlacement] = []
        for (fileID, sealed) in try await session.sealedFiles() {
            let placement = try encrypted.open(sealed)
            batch.append(UnsealedPlacement(fileID: fileID, name: placement.name, path: placement.path, rawPath: placement.rawPathBytes,
                                           modifiedAt: placement.modifiedAt))
            if batch.count >= 1000 {
                try await session.unsealFiles(batch)
                batch = []
            }
        }
        try await session.unsealFiles(batch)
        await progress.say("\(encrypted.records.count) encrypted sources opened with the keys given")
    }
}
