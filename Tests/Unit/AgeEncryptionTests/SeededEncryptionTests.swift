import AgeEncryption
import Foundation
import Testing

@Suite("age encryption from a seed (resumable uploads)")
struct SeededEncryptionTests {
    static func file(_ plaintext: [UInt8], recipients: [AgeRecipient], seed: [UInt8], using generator: inout SeededGenerator) throws -> [UInt8] {
        var encryptor = try AgeEncryptor(recipients: recipients, seed: seed)
        var output = encryptor.header
        inRandomPieces(plaintext, using: &generator) { encryptor.encrypt($0, into: &output) }
        encryptor.finish(into: &output)
        return output
    }

    @Test("the same seed gives the same file byte for byte whatever the write splits; another seed shares nothing; both decrypt")
    func deterministic() throws {
        let seedValue = UInt64.random(in: 0...UInt64.max)
        var generator = SeededGenerator(seed: seedValue)
        let identity = AgeX25519Identity.generate()
        let recipients: [AgeRecipient] = [.x25519(identity.recipient), .x25519(AgeX25519Identity.generate().recipient)]
        let plaintext = generator.bytes(Int.random(in: 0...(5 * AgeEncryptor.chunkSize), using: &generator))
        let seed = generator.bytes(32)
        let first = try Self.file(plaintext, recipients: recipients, seed: seed, using: &generator)
        let second = try Self.file(plaintext, recipients: recipients, seed: seed, using: &generator)
        #expect(first == second, "seed \(seedValue)")
        let other = try Self.file(plaintext, recipients: recipients, seed: generator.bytes(32), using: &generator)
        #expect(other.count == first.count)
        // Another seed: another ephemeral share, file key and nonce, so no 16-byte window of the payload repeats.
        let payload = Int(AgeEncryptor.ciphertextSize(plaintextSize: Int64(plaintext.count), headerSize: 0))
        #expect(Array(first.suffix(payload).prefix(16)) != Array(other.suffix(payload).prefix(16)), "seed \(seedValue)")
        #expect(Array(first.prefix(first.count - payload)) != Array(other.prefix(other.count - payload)))
        for file in [first, other] {
            let result = decrypt(file, with: [.x25519(identity)], using: &generator)
            #expect(result.error == nil && result.plaintext == plaintext, "seed \(seedValue)")
        }
    }

    @Test("a seed shorter than 32 bytes is refused")
    func shortSeed() throws {
        #expect(throws: AgeError.self) { try AgeEncryptor(recipients: [.x25519(AgeX25519Identity.generate().recipient)], seed: [1, 2, 3]) }
    }
}
