import Crypto
import _CryptoExtras
import Foundation
import PipelineCore

/// The two native recipient types this implementation reads and writes: X25519 and scrypt.
enum StanzaType {
    static let x25519 = "X25519"
    static let scrypt = "scrypt"
    private static let x25519Label = Array("age-encryption.org/v1/X25519".utf8)
    private static let scryptLabel = Array("age-encryption.org/v1/scrypt".utf8)

    // MARK: X25519

    static func wrap(_ fileKey: FileKey, to recipient: AgeX25519Recipient, randomness: AgeRandomness = .system, index: Int = 0) throws -> Stanza {
        let ephemeral = try randomness.seeded
            ? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: randomness.bytes(32, label: "x25519 ephemeral \(index)"))
            : Curve25519.KeyAgreement.PrivateKey()
        let share = Array(ephemeral.publicKey.rawRepresentation)
        let secret = try ephemeral.sharedSecretFromKeyAgreement(with: Curve25519.KeyAgreement.PublicKey(rawRepresentation: recipient.publicKey))
        guard !isAllZero(secret) else { throw AgeError.key("the recipient \(recipient) is a low-order point, not a usable public key") }
        let wrapKey = secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: share + recipient.publicKey, sharedInfo: x25519Label, outputByteCount: 32)
        return Stanza(type: x25519, arguments: [AgeBase64.encode(share)], body: KeyWrap.seal(fileKey, with: wrapKey))
    }

    /// The file key if the stanza is for this identity, nil if it is not (another recipient, another type).
    /// Throws for a malformed X25519 stanza, as the spec requires.
    static func unwrap(_ stanza: Stanza, with identity: AgeX25519Identity) throws -> FileKey? {
        guard stanza.type == x25519 else { return nil }
        guard stanza.arguments.count == 1 else { throw AgeError.header("an X25519 stanza has \(stanza.arguments.count) arguments instead of 1") }
        guard let share = AgeBase64.decode(stanza.arguments[0]), share.count == 32 else {
            throw AgeError.header("an X25519 stanza's share is not 32 bytes of canonical base64")
        }
        let secret = try identity.privateKey.sharedSecretFromKeyAgreement(with: Curve25519.KeyAgreement.PublicKey(rawRepresentation: share))
        guard !isAllZero(secret) else { throw AgeError.header("an X25519 stanza's share is a low-order point") }
        let salt = share + identity.recipient.publicKey
        let wrapKey = secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt, sharedInfo: x25519Label, outputByteCount: 32)
        return try KeyWrap.open(stanza.body, with: wrapKey, stanza: x25519)
    }

    private static func isAllZero(_ secret: SharedSecret) -> Bool {
        secret.withUnsafeBytes { bytes in bytes.reduce(0) { $0 | $1 } == 0 }
    }

    // MARK: scrypt

    static let workFactors = 1...30

    static func wrap(_ fileKey: FileKey, passphrase: String, workFactor: Int, randomness: AgeRandomness = .system) throws -> Stanza {
        guard !passphrase.isEmpty else { throw AgeError(.badPassphrase, "the passphrase is empty") }
        guard workFactors.contains(workFactor) else { throw AgeError(.invalidRecipients, "the scrypt work factor must be within \(workFactors), not \(workFactor)") }
        let salt = randomness.bytes(16, label: "scrypt salt")
        let wrapKey = try scrypt(passphrase, salt: salt, workFactor: workFactor)
        return Stanza(type: scrypt, arguments: [AgeBase64.encode(salt), String(workFactor)], body: KeyWrap.seal(fileKey, with: wrapKey))
    }

    static func unwrap(_ stanza: Stanza, passphrase: String, maxWorkFactor: Int) throws -> FileKey? {
        guard stanza.type == scrypt else { return nil }
        guard stanza.arguments.count == 2 else { throw AgeError.header("an scrypt stanza has \(stanza.arguments.count) arguments instead of 2") }
        guard let salt = AgeBase64.decode(stanza.arguments[0]), salt.count == 16 else {
            throw AgeError.header("an scrypt stanza's salt is not 16 bytes of canonical base64")
        }
        // Decimal digits without a leading zero, as the spec's ABNF says (no sign, no hex, no octal).
        let text = stanza.arguments[1]
        guard let first = text.utf8.first, first != UInt8(ascii: "0"), text.utf8.allSatisfy({ (48...57).contains($0) }) else {
            throw AgeError.header("an scrypt stanza's work factor is not a decimal number without leading zeros")
        }
        guard let workFactor = Int(text), workFactor < 64 else { throw AgeError.header("an scrypt stanza's work factor is out of range") }
        guard workFactor <= maxWorkFactor else {
            throw AgeError(.scryptWorkFactorTooHigh, "the file's scrypt work factor is \(workFactor), above the limit of \(maxWorkFactor)")
        }
        guard stanza.body.count == FileKey.size + 16 else { throw AgeError.header("the scrypt stanza's body is not a wrapped 16-byte file key") }
        guard !passphrase.isEmpty else { return nil }
        return try KeyWrap.open(stanza.body, with: scrypt(passphrase, salt: salt, workFactor: workFactor), stanza: scrypt)
    }

    private static func scrypt(_ passphrase: String, salt: [UInt8], workFactor: Int) throws -> SymmetricKey {
        do {
            return try KDF.Scrypt.deriveKey(from: Array(passphrase.utf8), salt: scryptLabel + salt, outputByteCount: 32, rounds: 1 << workFactor, blockSize: 8, parallelism: 1)
        } catch {
            throw AgeError(.badPassphrase, "scrypt with work factor \(workFactor) failed (it needs \(1 << workFactor) KiB of memory)")
        }
    }
}
