import Crypto
import Foundation
import PipelineCore

/// An X25519 public key, written `age1…`: what a file is encrypted to.
public struct AgeX25519Recipient: Sendable, Hashable, CustomStringConvertible {
    /// The 32-byte Curve25519 public key.
    public let publicKey: [UInt8]

    static let humanReadablePart = "age"

    public init(publicKey: [UInt8]) throws {
        guard publicKey.count == 32 else { throw AgeError.key("an X25519 public key is 32 bytes, not \(publicKey.count)") }
        self.publicKey = publicKey
    }

    public init(parsing text: String) throws {
        let decoded: (humanReadablePart: String, data: [UInt8])
        do { decoded = try Bech32.decode(text) } catch {
            throw AgeError.key("not an age recipient (age1…): the Bech32 encoding is invalid (\(error))")
        }
        guard decoded.humanReadablePart == Self.humanReadablePart else {
            if decoded.humanReadablePart == "age1pq" || decoded.humanReadablePart.hasPrefix("age1") {
                throw AgeError(.unsupportedRecipient, "\(decoded.humanReadablePart)1… recipients (post-quantum or plugin) are not supported, only X25519 (age1…)")
            }
            throw AgeError.key("not an age X25519 recipient: it starts with \"\(decoded.humanReadablePart)1\", not \"age1\"")
        }
        try self.init(publicKey: decoded.data)
    }

    public var description: String { Bech32.encode(humanReadablePart: Self.humanReadablePart, data: publicKey) }
}

/// An X25519 secret key, written `AGE-SECRET-KEY-1…`: what opens files encrypted to its recipient. Printing it
/// shows the public key only.
public struct AgeX25519Identity: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let privateKey: Curve25519.KeyAgreement.PrivateKey
    public let recipient: AgeX25519Recipient

    static let humanReadablePart = "AGE-SECRET-KEY-"

    public static func generate() -> Self { try! Self(privateKey: Curve25519.KeyAgreement.PrivateKey()) }

    init(privateKey: Curve25519.KeyAgreement.PrivateKey) throws {
        self.privateKey = privateKey
        recipient = try AgeX25519Recipient(publicKey: Array(privateKey.publicKey.rawRepresentation))
    }

    /// From the 32 secret bytes.
    public init(secretKey: [UInt8]) throws {
        guard secretKey.count == 32 else { throw AgeError.key("an X25519 secret key is 32 bytes, not \(secretKey.count)") }
        try self.init(privateKey: Curve25519.KeyAgreement.PrivateKey(rawRepresentation: secretKey))
    }

    public init(parsing text: String) throws {
        let decoded: (humanReadablePart: String, data: [UInt8])
        do { decoded = try Bech32.decode(text) } catch {
            throw AgeError.key("not an age identity (AGE-SECRET-KEY-1…): the Bech32 encoding is invalid (\(error))")
        }
        guard decoded.humanReadablePart == Self.humanReadablePart else {
            if decoded.humanReadablePart.uppercased().hasPrefix("AGE-SECRET-KEY-PQ-") || decoded.humanReadablePart.uppercased().hasPrefix("AGE-PLUGIN-") {
                throw AgeError(.unsupportedRecipient, "post-quantum and plugin identities are not supported, only X25519 (AGE-SECRET-KEY-1…)")
            }
            throw AgeError.key("not an age X25519 identity: it does not start with \"AGE-SECRET-KEY-1\" (upper case)")
        }
        try self.init(secretKey: decoded.data)
    }

    /// `AGE-SECRET-KEY-1…`: the secret. Write it only where the key belongs (a key file of mode 0600).
    public var secretKeyString: String {
        Bech32.encode(humanReadablePart: Self.humanReadablePart, data: Array(privateKey.rawRepresentation))
    }

    public var description: String { "age identity for \(recipient)" }
    public var debugDescription: String { description }
    /// `dump` and debuggers see the public key only.
    public var customMirror: Mirror { Mirror(self, children: ["recipient": recipient]) }
}

/// Whom a file is encrypted to.
public enum AgeRecipient: Sendable, CustomStringConvertible {
    case x25519(AgeX25519Recipient)
    /// scrypt with 2^workFactor iterations; it must be the file's only recipient.
    case passphrase(String, workFactor: Int = 18)

    public var description: String {
        switch self {
        case .x25519(let recipient): "\(recipient)"
        case .passphrase(_, let workFactor): "passphrase (scrypt work factor \(workFactor))"
        }
    }
}

/// What may open a file.
public enum AgeIdentity: Sendable, CustomStringConvertible {
    case x25519(AgeX25519Identity)
    /// Files whose scrypt work factor is above `maxWorkFactor` are refused before any work (2^22 takes seconds
    /// and 4 GiB).
    case passphrase(String, maxWorkFactor: Int = 22)

    public var description: String {
        switch self {
        case .x25519(let identity): identity.description
        case .passphrase(_, let maxWorkFactor): "passphrase (scrypt work factor up to \(maxWorkFactor))"
        }
    }
}
