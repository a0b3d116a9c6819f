import AgeEncryption
import Crypto
import Foundation
import PipelineCore

/// How an encrypted source is encrypted, as its `sources.encryption` column holds it. Nothing in it lets a reader
/// of the catalog decrypt anything: keys are there only wrapped (age-encrypted) for the identity's holder.
public struct SourceEncryptionRecord: Codable, Sendable, Hashable {
    public enum Scheme: String, Codable, Sendable {
        /// Encrypted to X25519 recipients the user gave (`--encrypt-to`, `--encrypt-to-file`).
        case recipients
        /// Encrypted to the source's own X25519 key, which is itself stored encrypted with the passphrase
        /// (`--passphrase`): one scrypt per run instead of one per file.
        case passphrase
    }

    public var format = "age-encryption.org/v1"
    public var scheme: Scheme
    /// The `age1…` recipients every file of the source is encrypted to.
    public var recipients: [String]
    /// Hex SHA-256 of the sorted recipients: sources with the same recipients share a dedupe key.
    public var recipientsFingerprint: String
    /// Names the secret key the source's content hashes are keyed with (never the key itself).
    public var dedupeKeyID: String
    /// The dedupe key, age-encrypted to the recipients (base64): only an identity's holder can read it.
    public var wrappedDedupeKey: String
    /// Passphrase scheme: the source's identity file (age-keygen's format), age-encrypted with the passphrase.
    public var sourceIdentity: String?
    /// The source's label, note, origin and metadata, age-encrypted to the recipients: what the catalog export
    /// carries instead of the clear text, and what `rebuild-catalog --identity` reads back.
    public var sealedSource: String
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case format, scheme, recipients, recipientsFingerprint = "recipients_fingerprint", dedupeKeyID = "dedupe_key_id"
        case wrappedDedupeKey = "wrapped_dedupe_key", sourceIdentity = "source_identity", sealedSource = "sealed_source"
        case createdAt = "created_at"
    }

    public static func decode(_ json: String) throws -> SourceEncryptionRecord {
        do {
            return try JSONDecoder.encryptionRecord.decode(SourceEncryptionRecord.self, from: Data(json.utf8))
        } catch {
            throw EncryptionError(.badRecord, "the source's encryption record cannot be read: \(error)")
        }
    }

    public func encoded() -> String {
        String(decoding: (try? JSONEncoder.encryptionRecord.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// What `sources` and the status page say about it, e.g. "age, to 2 recipients (age1abc…, age1def…)".
    public var summary: String {
        switch scheme {
        case .passphrase: return "age, with a passphrase"
        case .recipients:
            let shown = recipients.prefix(2).map { String($0.prefix(12)) + "…" }.joined(separator: ", ")
            return "age, to \(recipients.count) recipient\(recipients.count == 1 ? "" : "s") (\(shown)\(recipients.count > 2 ? ", …" : ""))"
        }
    }

    public static func fingerprint(of recipients: [AgeX25519Recipient]) -> String {
        let text = Set(recipients.map(\.description)).sorted().joined(separator: "\n")
        return Array(SHA256.hash(data: Data(("personal-backup recipients v1\n" + text).utf8))).hexString
    }
}

/// The clear text a source's `sealed_source` hides.
public struct SealedSource: Codable, Sendable, Hashable {
    public var label: String
    public var note: String?
    public var origin: String?
    public var metadata: [String: String]

    public init(label: String, note: String?, origin: String?, metadata: [String: String]) {
        self.label = label
        self.note = note
        self.origin = origin
        self.metadata = metadata
    }
}

/// The clear text an encrypted file's `details.sealed` hides, copied as it is into the bundle manifest and the
/// object metadata: where the file belongs, for a restore or a rebuild by the identity's holder.
public struct SealedPlacement: Codable, Sendable, Hashable {
    public var sourceID: Int64
    public var sourceLabel: String
    public var path: String
    public var name: String
    /// The exact path bytes when they are not valid UTF-8 (base64).
    public var rawPath: String?

    public var rawPathBytes: [UInt8]? { rawPath.flatMap { Data(base64Encoded: $0) }.map { Array($0) } }
    public var modifiedAt: Date?
    /// What the classifier took it for (`video/mp4`, …), and `video` when it is a video kept as it is.
    public var format: String?
    public var classifiedKind: String?
    /// The plaintext's size (the archive shows only the ciphertext's).
    public var size: Int64

    public init(sourceID: Int64, sourceLabel: String, path: String, name: String, rawPath: [UInt8]?, modifiedAt: Date?, format: String?,
                classifiedKind: String?, size: Int64) {
        self.sourceID = sourceID
        self.size = size
        self.sourceLabel = sourceLabel
        self.path = path
        self.name = name
        self.rawPath = rawPath.map { Data($0).base64EncodedString() }
        self.modifiedAt = modifiedAt
        self.format = format
        self.classifiedKind = classifiedKind
    }

    enum CodingKeys: String, CodingKey {
        case sourceID = "source_id", sourceLabel = "source_label", path, name, rawPath = "raw_path", modifiedAt = "modified_at", format
        case classifiedKind = "classified_kind", size
    }
}

/// Why encryption or decryption of a source failed.
public typealias EncryptionError = CodedError<EncryptionErrorCode>

public enum EncryptionErrorCode: String, Sendable, Hashable {
    case badRecord, badRecipient, wrongIdentity, wrongPassphrase, mismatch, keyMissing, sealFailed, localKeyStore
}

extension JSONEncoder {
    static let encryptionRecord: JSONEncoder = {
        let encoder = JSONEncoder()
        // Seconds, not ISO 8601: a modification time must come back to the microsecond.
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

extension JSONDecoder {
    static let encryptionRecord: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()
}
