import AgeEncryption
import Crypto
import Foundation
import PipelineCore

/// Small age files as base64 text: the sealed placement of a file, a source's sealed clear text, wrapped keys.
public enum SealedText {
    public static func seal(_ plaintext: some Collection<UInt8>, to recipients: [AgeRecipient]) throws -> String {
        var encryptor = try AgeEncryptor(recipients: recipients)
        var output = encryptor.header
        Array(plaintext).withUnsafeBytes { encryptor.encrypt($0, into: &output) }
        encryptor.finish(into: &output)
        return Data(output).base64EncodedString()
    }

    public static func open(_ text: String, with identities: [AgeIdentity]) throws -> [UInt8] {
        guard let sealed = Data(base64Encoded: text) else { throw EncryptionError(.badRecord, "a sealed value is not base64") }
        var decryptor = AgeDecryptor(identities: identities)
        var output: [UInt8] = []
        try Array(sealed).withUnsafeBytes { try decryptor.decrypt($0, into: &output) }
        try decryptor.finish(into: &output)
        return output
    }

    public static func seal<Value: Encodable>(json value: Value, to recipients: [AgeRecipient]) throws -> String {
        try seal(Array(try JSONEncoder.encryptionRecord.encode(value)), to: recipients)
    }

    public static func open<Value: Decodable>(json text: String, as type: Value.Type, with identities: [AgeIdentity]) throws -> Value {
        try JSONDecoder.encryptionRecord.decode(type, from: Data(try open(text, with: identities)))
    }
}

/// The keys of one encrypted source while it is written: who the files are encrypted to, and the secret key its
/// content hashes are keyed with (so equal files are found equal without the catalog learning their SHA-256).
public struct SourceKeys: Sendable {
    public let recipients: [AgeX25519Recipient]
    public let dedupeKey: SymmetricKey
    public let record: SourceEncryptionRecord

    public var ageRecipients: [AgeRecipient] { recipients.map { .x25519($0) } }

    /// The randomness of one staged object's encryption, derived from the secret key and the object's staging
    /// key: a resumed multipart upload regenerates byte-identical ciphertext without any key on disk, and no two
    /// objects share one (every attempt gets a new staging key).
    public func encryptionSeed(forStagingKey key: String) -> [UInt8] {
        var mac = HMAC<SHA256>(key: dedupeKey)
        mac.update(data: Data("personal-backup age seed v1\n\(key)".utf8))
        return Array(mac.finalize())
    }

    public static func keyID(of key: SymmetricKey) -> String {
        key.withUnsafeBytes { bytes in
            var hasher = SHA256()
            hasher.update(data: Data("personal-backup dedupe key id v1\n".utf8))
            hasher.update(bufferPointer: bytes)
            return String(Array(hasher.finalize()).hexString.prefix(32))
        }
    }

    // MARK: a new source

    /// A new source encrypted to `recipients`, with `dedupeKey` (shared with the other sources of these
    /// recipients whose key this machine holds, else new).
    public static func create(recipients: [AgeX25519Recipient], dedupeKey: SymmetricKey, source: SealedSource) throws -> SourceKeys {
        let unique = Array(Set(recipients)).sorted { $0.description < $1.description }
        guard !unique.isEmpty else { throw EncryptionError(.badRecipient, "no recipient to encrypt to") }
        let age = unique.map { AgeRecipient.x25519($0) }
        let record = SourceEncryptionRecord(
            scheme: .recipients, recipients: unique.map(\.description), recipientsFingerprint: SourceEncryptionRecord.fingerprint(of: unique),
            dedupeKeyID: keyID(of: dedupeKey), wrappedDedupeKey: try SealedText.seal(dedupeKey.bytes, to: age), sourceIdentity: nil,
            sealedSource: try SealedText.seal(json: source, to: age), createdAt: Date())
        return SourceKeys(recipients: unique, dedupeKey: dedupeKey, record: record)
    }

    /// A new source protected by a passphrase: a fresh identity of its own, stored encrypted with the passphrase.
    public static func create(passphrase: String, source: SealedSource) throws -> SourceKeys {
        let identity = AgeX25519Identity.generate()
        let identityFile = AgeFiles.keygenFile(identity, created: Date())
        let dedupeKey = passphraseDedupeKey(identity)
        let age = [AgeRecipient.x25519(identity.recipient)]
        let record = SourceEncryptionRecord(
            scheme: .passphrase, recipients: [identity.recipient.description],
            recipientsFingerprint: SourceEncryptionRecord.fingerprint(of: [identity.recipient]),
            dedupeKeyID: keyID(of: dedupeKey), wrappedDedupeKey: try SealedText.seal(dedupeKey.bytes, to: age),
            sourceIdentity: try SealedText.seal(Array(identityFile.utf8), to: [.passphrase(passphrase)]),
            sealedSource: try SealedText.seal(json: source, to: age), createdAt: Date())
        return SourceKeys(recipients: [identity.recipient], dedupeKey: dedupeKey, record: record)
    }

    // MARK: a source that exists

    /// Continues a recipients source: the same recipients, and the dedupe key this machine holds for it.
    public static func resume(_ record: SourceEncryptionRecord, recipients: [AgeX25519Recipient], dedupeKey: SymmetricKey?) throws -> SourceKeys {
        guard record.scheme == .recipients else {
            throw EncryptionError(.mismatch, "this source is protected by a passphrase; pass --passphrase (not --encrypt-to)")
        }
        guard SourceEncryptionRecord.fingerprint(of: recipients) == record.recipientsFingerprint else {
            throw EncryptionError(.mismatch, "this source is encrypted to other recipients (\(record.summary)); pass exactly the same --encrypt-to list")
        }
        guard let dedupeKey, keyID(of: dedupeKey) == record.dedupeKeyID else {
            throw EncryptionError(.keyMissing, "this machine does not hold the source's dedupe key \(record.dedupeKeyID)")
        }
        let unique = Array(Set(recipients)).sorted { $0.description < $1.description }
        return SourceKeys(recipients: unique, dedupeKey: dedupeKey, record: record)
    }

    /// Continues a passphrase source: the passphrase opens the source's identity.
    public static func resume(_ record: SourceEncryptionRecord, passphrase: String) throws -> SourceKeys {
        guard record.scheme == .passphrase, let sealed = record.sourceIdentity else {
            throw EncryptionError(.mismatch, "this source is encrypted to recipients (\(record.summary)); pass --encrypt-to (not --passphrase)")
        }
        let identity = try openSourceIdentity(sealed, passphrase: passphrase)
        return SourceKeys(recipients: [identity.recipient], dedupeKey: passphraseDedupeKey(identity), record: record)
    }

    static func passphraseDedupeKey(_ identity: AgeX25519Identity) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(identity.secretKeyString.utf8)),
            info: Data("personal-backup dedupe key v1".utf8), outputByteCount: 32)
    }

    static func openSourceIdentity(_ sealed: String, passphrase: String) throws -> AgeX25519Identity {
        let text: [UInt8]
        do {
            text = try SealedText.open(sealed, with: [.passphrase(passphrase)])
        } catch {
            throw EncryptionError(.wrongPassphrase, "the passphrase does not open this source")
        }
        guard let identity = try AgeFiles.parseIdentities(String(decoding: text, as: UTF8.self)).first else {
            throw EncryptionError(.badRecord, "the source's key holds no identity")
        }
        return identity
    }
}

/// What a reader (restore, verify, rebuild) needs of one encrypted source: the identities that open its files,
/// and its dedupe key to check each restored file's keyed hash.
public struct SourceUnlock: Sendable {
    public let fileIdentities: [AgeIdentity]
    public let dedupeKey: SymmetricKey

    /// Opens the source with the user's X25519 identities or passphrase. One clear error when none fits, before
    /// anything is written.
    public static func open(_ record: SourceEncryptionRecord, identities: [AgeX25519Identity], passphrase: String?) throws -> SourceUnlock {
        switch record.scheme {
        case .recipients:
            let age = identities.map { AgeIdentity.x25519($0) }
            guard let key = try? SealedText.open(record.wrappedDedupeKey, with: age) else {
                throw EncryptionError(.wrongIdentity, identities.isEmpty
                    ? "it is encrypted (\(record.summary)): pass --identity FILE"
                    : "none of the identities given opens it (it is encrypted \(record.summary.dropFirst(5)))")
            }
            return SourceUnlock(fileIdentities: age, dedupeKey: SymmetricKey(data: key))
        case .passphrase:
            guard let passphrase else { throw EncryptionError(.wrongPassphrase, "it is protected by a passphrase: pass --passphrase") }
            guard let sealed = record.sourceIdentity else { throw EncryptionError(.badRecord, "its record has no source key") }
            let identity = try SourceKeys.openSourceIdentity(sealed, passphrase: passphrase)
            return SourceUnlock(fileIdentities: [.x25519(identity)], dedupeKey: SourceKeys.passphraseDedupeKey(identity))
        }
    }
}

extension SymmetricKey {
    var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

/// The user's keys for reading encrypted sources (`--identity`, `--passphrase`), and the sources opened so far.
public struct SourceKeyring: Sendable {
    public var identities: [AgeX25519Identity]
    public var passphrase: String?

    public init(identities: [AgeX25519Identity] = [], passphrase: String? = nil) {
        self.identities = identities
        self.passphrase = passphrase
    }

    public var isEmpty: Bool { identities.isEmpty && passphrase == nil }

    public func unlock(_ record: SourceEncryptionRecord) throws -> SourceUnlock {
        try SourceUnlock.open(record, identities: identities, passphrase: passphrase)
    }
}
