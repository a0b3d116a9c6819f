import AgeEncryption
import Crypto
import PipelineCore
import Testing

/// Deterministic randomness from a seed (ChaCha20's keystream, through swift-crypto), so that a failing randomized
/// case can be replayed from the seed it prints.
struct SeededGenerator: RandomNumberGenerator {
    private let key: SymmetricKey
    private var counter: UInt64 = 0

    init(seed: UInt64) {
        key = SymmetricKey(data: SHA256.hash(data: withUnsafeBytes(of: seed.bigEndian) { Array($0) }))
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        counter += 1
        let nonce = try! ChaChaPoly.Nonce(data: [0, 0, 0, 0] + withUnsafeBytes(of: counter.bigEndian) { Array($0) })
        return Array(try! ChaChaPoly.seal([UInt8](repeating: 0, count: count), using: key, nonce: nonce).ciphertext)
    }

    mutating func next() -> UInt64 { bytes(8).reduce(0) { $0 << 8 | UInt64($1) } }
}

/// Feeds `bytes` to `body` in random pieces (1 byte to a few chunks), as a reader of files or sockets would.
func inRandomPieces(_ bytes: [UInt8], using generator: inout SeededGenerator, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
    var offset = 0
    while offset < bytes.count {
        let piece: Int =
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: Int.random(in: 1...64, using: &generator)
            case 1: Int.random(in: 1...70_000, using: &generator)
            default: Int.random(in: 1...300_000, using: &generator)
            }
        let end = min(bytes.count, offset + piece)
        try bytes[offset..<end].withUnsafeBytes(body)
        offset = end
    }
}

func encrypt(_ plaintext: [UInt8], to recipients: [AgeRecipient], using generator: inout SeededGenerator) throws -> [UInt8] {
    var encryptor = try AgeEncryptor(recipients: recipients)
    var output = encryptor.header
    inRandomPieces(plaintext, using: &generator) { encryptor.encrypt($0, into: &output) }
    encryptor.finish(into: &output)
    return output
}

/// The plaintext handed out and the error, if any: both matter (nothing unauthenticated may come out).
func decrypt(_ file: [UInt8], with identities: [AgeIdentity], using generator: inout SeededGenerator) -> (plaintext: [UInt8], error: AgeError?) {
    var decryptor = AgeDecryptor(identities: identities)
    var plaintext: [UInt8] = []
    do {
        try inRandomPieces(file, using: &generator) { try decryptor.decrypt($0, into: &plaintext) }
        try decryptor.finish(into: &plaintext)
        return (plaintext, nil)
    } catch let error as AgeError {
        return (plaintext, error)
    } catch {
        Issue.record("not an AgeError: \(error)")
        return (plaintext, nil)
    }
}
