import AgeEncryption
import Foundation
import PipelineCore
import Testing

@Suite("age round trips, damage and resume")
struct RoundTripTests {
    static let chunk = AgeEncryptor.chunkSize
    static let identity = AgeX25519Identity.generate()
    static let recipients: [AgeRecipient] = [.x25519(AgeX25519Identity.generate().recipient), .x25519(identity.recipient)]

    static func sizes(using generator: inout SeededGenerator) -> [Int] {
        [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 17]
            + (0..<4).map { _ in Int.random(in: 0...(3 << 20), using: &generator) }
    }

    @Test("sizes 0 to a few MiB, random write splits: the size formula holds and the plaintext comes back")
    func roundTrips() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var generator = SeededGenerator(seed: seed)
        for size in Self.sizes(using: &generator) {
            let plaintext = generator.bytes(size)
            let file = try encrypt(plaintext, to: Self.recipients, using: &generator)
            let headerSize = try AgeEncryptor(recipients: Self.recipients).header.count
            #expect(Int64(file.count) == AgeEncryptor.ciphertextSize(plaintextSize: Int64(size), headerSize: headerSize), "seed \(seed), size \(size)")
            let result = decrypt(file, with: [.x25519(Self.identity)], using: &generator)
            #expect(result.error == nil, "seed \(seed), size \(size): \(result.error.map(String.init(describing:)) ?? "")")
            #expect(result.plaintext == plaintext, "seed \(seed), size \(size)")
        }
    }

    /// A random plaintext of a few chunks, its age file, and where the payload starts in it.
    static func sample(using generator: inout SeededGenerator) throws -> (plaintext: [UInt8], file: [UInt8], payloadStart: Int) {
        let plaintext = generator.bytes(Int.random(in: 3 * chunk...(6 * chunk), using: &generator))
        let file = try encrypt(plaintext, to: recipients, using: &generator)
        return (plaintext, file, file.count - Int(AgeEncryptor.ciphertextSize(plaintextSize: Int64(plaintext.count), headerSize: 0)))
    }

    @Test("truncation anywhere is an error, and only whole authenticated chunks come out")
    func truncation() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var generator = SeededGenerator(seed: seed)
        let (plaintext, file, headerSize) = try Self.sample(using: &generator)
        let cuts = [0, 1, headerSize - 17, headerSize, headerSize + 1, headerSize + 16 + Self.chunk + 16, file.count - 1]
            + (0..<40).map { _ in Int.random(in: 0..<file.count, using: &generator) }
        for cut in cuts {
            let result = decrypt(Array(file[..<cut]), with: [.x25519(Self.identity)], using: &generator)
            #expect(result.error != nil, "seed \(seed), cut at \(cut) of \(file.count)")
            #expect(result.plaintext.count % Self.chunk == 0 && plaintext.starts(with: result.plaintext), "seed \(seed), cut at \(cut)")
        }
    }

    @Test("one altered byte anywhere is an error; nothing of the altered chunk or after it comes out")
    func alteredByte() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var generator = SeededGenerator(seed: seed)
        let (plaintext, file, payloadStart) = try Self.sample(using: &generator)
        let positions = [0, payloadStart - 17, payloadStart - 1, payloadStart, file.count - 1] + (0..<60).map { _ in Int.random(in: 0..<file.count, using: &generator) }
        for position in positions {
            var damaged = file
            damaged[position] ^= UInt8.random(in: 1...255, using: &generator)
            let result = decrypt(damaged, with: [.x25519(Self.identity)], using: &generator)
            #expect(result.error != nil, "seed \(seed), byte \(position)")
            // Chunks before the altered one are genuine and may come out; the altered one never does.
            let goodChunks = position < payloadStart ? 0 : (position - payloadStart) / (Self.chunk + 16)
            #expect(result.plaintext == Array(plaintext.prefix(goodChunks * Self.chunk)), "seed \(seed), byte \(position)")
            if position >= payloadStart { #expect(result.error?.isPayloadFailure == true, "seed \(seed), byte \(position)") }
        }
    }

    @Test("data after the last chunk is refused")
    func trailingData() throws {
        var generator = SeededGenerator(seed: 7)
        for size in [0, 100, Self.chunk, 2 * Self.chunk] {
            let plaintext = generator.bytes(size)
            let file = try encrypt(plaintext, to: Self.recipients, using: &generator) + [0]
            let result = decrypt(file, with: [.x25519(Self.identity)], using: &generator)
            // After a short last chunk the extra byte makes that chunk fail; after a full one it is seen as extra,
            // and the last chunk, which authenticated, has come out.
            if size % Self.chunk == 0, size > 0 {
                #expect(result.error?.code == .trailingData && result.plaintext == plaintext, "size \(size)")
            } else {
                #expect(result.error?.code == .badPayload && result.plaintext.isEmpty, "size \(size)")
            }
        }
    }

    @Test("resuming at any chunk boundary regenerates the same bytes, also through JSON")
    func resume() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var generator = SeededGenerator(seed: seed)
        for size in [1, Self.chunk, 6 * Self.chunk + 5] {
            let plaintext = generator.bytes(size)
            var encryptor = try AgeEncryptor(recipients: Self.recipients)
            let state = try JSONDecoder().decode(AgeEncryptor.ResumeState.self, from: JSONEncoder().encode(encryptor.resumeState))
            var file = encryptor.header
            inRandomPieces(plaintext, using: &generator) { encryptor.encrypt($0, into: &file) }
            encryptor.finish(into: &file)
            let chunks = UInt64(AgeEncryptor.chunkCount(plaintextSize: Int64(size)))
            for chunk in Set([0, chunks - 1, UInt64.random(in: 0..<chunks, using: &generator)]) {
                var resumed = try AgeEncryptor(resuming: state, atChunk: chunk)
                #expect(resumed.header == encryptor.header)
                var tail: [UInt8] = []
                inRandomPieces(Array(plaintext[(Int(chunk) * Self.chunk)...]), using: &generator) { resumed.encrypt($0, into: &tail) }
                resumed.finish(into: &tail)
                let offset = Int(AgeEncryptor.ciphertextOffset(ofChunk: chunk, headerSize: encryptor.header.count))
                #expect(tail == Array(file[offset...]), "seed \(seed), size \(size), chunk \(chunk)")
            }
        }
    }

    @Test("a resume state that does not hold together is refused, and never printed with its key")
    func badResumeState() throws {
        let state = try AgeEncryptor(recipients: Self.recipients).resumeState
        var otherKey = [UInt8](state.fileKey)
        otherKey[0] ^= 1
        let tampered = AgeEncryptor.ResumeState(fileKey: Data(otherKey), nonce: state.nonce, header: state.header)
        #expect(throws: AgeError(.badResumeState, "the resume state's header is not an age header that its file key authenticates")) {
            try AgeEncryptor(resuming: tampered, atChunk: 0)
        }
        let short = AgeEncryptor.ResumeState(fileKey: state.fileKey.prefix(8), nonce: state.nonce, header: state.header)
        #expect { try AgeEncryptor(resuming: short, atChunk: 0) } throws: { ($0 as? AgeError)?.code == .badResumeState }
        #expect(!"\(state)".contains(state.fileKey.base64EncodedString()) && !"\(state)".contains("\(Array(state.fileKey))"))
    }

    @Test("passphrase: round trip, wrong passphrase, work factor above the limit, and the mixing rule")
    func passphrase() throws {
        var generator = SeededGenerator(seed: 11)
        let plaintext = generator.bytes(Self.chunk + 3)
        let file = try encrypt(plaintext, to: [.passphrase("correct horse", workFactor: 10)], using: &generator)
        let good = decrypt(file, with: [.x25519(Self.identity), .passphrase("correct horse")], using: &generator)
        #expect(good.error == nil && good.plaintext == plaintext)
        #expect(decrypt(file, with: [.passphrase("wrong")], using: &generator).error?.code == .badPassphrase)
        #expect(decrypt(file, with: [.passphrase("correct horse", maxWorkFactor: 9)], using: &generator).error?.code == .scryptWorkFactorTooHigh)
        #expect(decrypt(file, with: [.x25519(Self.identity)], using: &generator).error?.code == .noMatchingIdentity)
        #expect { try AgeEncryptor(recipients: [.passphrase("a"), .x25519(Self.identity.recipient)]) } throws: { ($0 as? AgeError)?.code == .invalidRecipients }
        #expect { try AgeEncryptor(recipients: []) } throws: { ($0 as? AgeError)?.code == .invalidRecipients }
        #expect { try AgeEncryptor(recipients: [.passphrase("")]) } throws: { ($0 as? AgeError)?.code == .badPassphrase }
    }

    @Test("identities: the wrong key, several keys of which one fits, and none at all")
    func identities() throws {
        var generator = SeededGenerator(seed: 3)
        let file = try encrypt(Array("hello".utf8), to: Self.recipients, using: &generator)
        let wrong = decrypt(file, with: [.x25519(.generate())], using: &generator)
        #expect(wrong.error?.code == .noMatchingIdentity && wrong.plaintext.isEmpty)
        #expect(decrypt(file, with: [.x25519(.generate()), .x25519(Self.identity)], using: &generator).plaintext == Array("hello".utf8))
        #expect(decrypt(file, with: [], using: &generator).error?.code == .noMatchingIdentity)
        #expect(decrypt(Array("hello, not age\n".utf8), with: [.x25519(Self.identity)], using: &generator).error?.code == .badHeader)
        #expect(decrypt([], with: [.x25519(Self.identity)], using: &generator).error?.code == .badHeader)
    }
}
