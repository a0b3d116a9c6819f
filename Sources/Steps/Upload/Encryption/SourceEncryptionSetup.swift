import AgeEncryption
import ArchiveFormat
import Catalog
import Crypto
import Foundation
import PipelineCore
import SystemIO

/// What the user asked for: encryption to recipients (`--encrypt-to`, `--encrypt-to-file`) or with a passphrase.
public enum EncryptionRequest: Sendable {
    case recipients([AgeX25519Recipient])
    case passphrase(String)
}

/// An upload run's encryption settings.
public struct UploadEncryptionSettings: Sendable {
    public var request: EncryptionRequest?
    /// X25519 identities (`--identity`), only to recover the dedupe key of a source this machine has not written.
    public var identities: [AgeX25519Identity]
    public var keyStore: DedupeKeyStore

    public init(request: EncryptionRequest?, identities: [AgeX25519Identity] = [], keyStore: DedupeKeyStore) {
        self.request = request
        self.identities = identities
        self.keyStore = keyStore
    }
}

extension UploadRun {
    /// Agrees with the catalog on how the source is encrypted, before any of its files is read: a source is
    /// encrypted from its first file on or never, and always the same way.
    func setUpEncryption(sourceID: Int64, origin: String) async throws -> RunEncryption? {
        let label = configuration.label
        let request = configuration.encryption?.request
        let first = try await catalog.claimEncryption(sourceID: sourceID, proposed: nil)
        if let record = first.record {
            return try RunEncryption(keys: try await resumeKeys(try SourceEncryptionRecord.decode(record), request: request))
        }
        guard let request else { return nil }
        guard !first.holdsFiles else {
            throw EncryptionError(.mismatch, "source '\(label)' already holds files stored without encryption; encrypted files need a source of their own (a new --label)")
        }
        let sealed = SealedSource(label: label, note: configuration.note, origin: origin, metadata: configuration.metadata)
        let proposed: SourceKeys
        switch request {
        case .recipients(let recipients):
            proposed = try SourceKeys.create(recipients: recipients, dedupeKey: try await dedupeKey(for: recipients), source: sealed)
            // Kept here before the catalog names it, so that a crash in between cannot leave a source whose key
            // no machine holds.
            try configuration.encryption?.keyStore.save(proposed.dedupeKey)
        case .passphrase(let passphrase):
            // scrypt takes a second of CPU: on the thread pool, never on the cooperative pool.
            proposed = try await blocking { try SourceKeys.create(passphrase: passphrase, source: sealed) }
        }
        let claimed = try await catalog.claimEncryption(sourceID: sourceID, proposed: proposed.record.encoded())
        guard let record = claimed.record else { throw EncryptionError(.badRecord, "the catalog did not keep the source's encryption") }
        return try RunEncryption(keys: try await resumeKeys(try SourceEncryptionRecord.decode(record), request: request))
    }

    /// The keys of a source that has its record already (or just got it).
    private func resumeKeys(_ record: SourceEncryptionRecord, request: EncryptionRequest?) async throws -> SourceKeys {
        switch request {
        case nil:
            throw EncryptionError(.mismatch, "source '\(configuration.label)' is encrypted (\(record.summary)); run again with "
                + (record.scheme == .passphrase ? "--passphrase" : "the same --encrypt-to") + " to add to it (nothing was uploaded)")
        case .passphrase(let passphrase):
            return try await blocking { try SourceKeys.resume(record, passphrase: passphrase) }
        case .recipients(let recipients):
            guard let settings = configuration.encryption else { throw EncryptionError(.keyMissing, "no key store") }
            var key = try settings.keyStore.load(keyID: record.dedupeKeyID)
            if key == nil, !settings.identities.isEmpty {
                // Written on another machine: the identity opens the copy the catalog keeps for its holder.
                let unlocked = try SourceUnlock.open(record, identities: settings.identities, passphrase: nil)
                key = unlocked.dedupeKey
                try settings.keyStore.save(unlocked.dedupeKey)
            }
            do {
                return try SourceKeys.resume(record, recipients: recipients, dedupeKey: key)
            } catch let error as EncryptionError where error.code == .keyMissing {
                throw EncryptionError(.keyMissing, "source '\(configuration.label)' was written on another machine: its dedupe key "
                    + "\(record.dedupeKeyID) is not in \(settings.keyStore.directory); pass --identity FILE once to recover it from the catalog")
            }
        }
    }

    /// The dedupe key for a new source with these recipients: the key of another source with the same recipients
    /// when this machine holds it (identical files across those sources are then stored once), else a new one.
    private func dedupeKey(for recipients: [AgeX25519Recipient]) async throws -> SymmetricKey {
        guard let store = configuration.encryption?.keyStore else { return SymmetricKey(size: .bits256) }
        let fingerprint = SourceEncryptionRecord.fingerprint(of: recipients)
        for text in try await catalog.encryptionRecords(recipientsFingerprint: fingerprint) {
            if let record = try? SourceEncryptionRecord.decode(text), let key = try store.load(keyID: record.dedupeKeyID) {
                return key
            }
        }
        return SymmetricKey(size: .bits256)
    }
}
