import Crypto
import Foundation
import PipelineCore

/// The 16-byte key a file is encrypted with, and the keys derived from it (HKDF-SHA-256 as the spec says).
struct FileKey: Sendable {
    static let size = 16
    let bytes: [UInt8]

    init(bytes: [UInt8]) {
        precondition(bytes.count == Self.size)
        self.bytes = bytes
    }

    static func random() -> FileKey { FileKey(bytes: randomBytes(size)) }

    var macKey: SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: bytes), salt: [UInt8](), info: Array("header".utf8), outputByteCount: 32)
    }

    func payloadKey(nonce: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: bytes), salt: nonce, info: Array("payload".utf8), outputByteCount: 32)
    }

    func mac(_ authenticatedBytes: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: authenticatedBytes, using: macKey))
    }

    /// Constant-time comparison, as a MAC check must be.
    func authenticates(_ header: AgeHeader) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(header.mac, authenticating: header.authenticatedBytes, using: macKey)
    }
}

/// Bytes from the system's CSPRNG (swift-crypto's key generation draws from it).
func randomBytes(_ count: Int) -> [UInt8] {
    SymmetricKey(size: SymmetricKeySize(bitCount: count * 8)).withUnsafeBytes { Array($0) }
}

/// ChaCha20-Poly1305 with the all-zero nonce, which wraps a file key in a stanza body (each wrap key is used once).
enum KeyWrap {
    static func seal(_ fileKey: FileKey, with key: SymmetricKey) -> [UInt8] {
        let box = try! ChaChaPoly.seal(fileKey.bytes, using: key, nonce: zeroNonce)
        return Array(box.ciphertext) + Array(box.tag)
    }

    /// nil when the body does not authenticate (a stanza for someone else). The length is checked first, as the
    /// spec requires, so a long body cannot be used as a partitioning oracle.
    static func open(_ body: [UInt8], with key: SymmetricKey, stanza: String) throws -> FileKey? {
        guard body.count == FileKey.size + 16 else { throw AgeError.header("the \(stanza) stanza's body is not a wrapped 16-byte file key") }
        guard let box = try? ChaChaPoly.SealedBox(nonce: zeroNonce, ciphertext: body.prefix(FileKey.size), tag: body.suffix(16)),
              let opened = try? ChaChaPoly.open(box, using: key)
        else { return nil }
        return FileKey(bytes: Array(opened))
    }

    private static let zeroNonce = try! ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12))
}
