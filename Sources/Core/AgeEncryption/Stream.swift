import Crypto
import Foundation
import PipelineCore

/// ChaCha20-Poly1305 over one payload chunk. The nonce is the spec's: an 11-byte big-endian chunk counter and a
/// last-chunk flag byte (the counter's top three bytes stay zero: 2^64 chunks are beyond any file).
struct ChunkCipher: Sendable {
    static let chunkSize = 65536
    static let tagSize = 16
    static let sealedChunkSize = chunkSize + tagSize

    let key: SymmetricKey
    var counter: UInt64

    private func nonce(last: Bool) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 12)
        for index in 0..<8 { bytes[3 + index] = UInt8(truncatingIfNeeded: counter >> UInt64(8 * (7 - index))) }
        bytes[11] = last ? 1 : 0
        return bytes
    }

    func seal(_ plaintext: UnsafeRawBufferPointer, last: Bool, into output: inout [UInt8]) {
        let box = try! ChaChaPoly.seal(plaintext, using: key, nonce: ChaChaPoly.Nonce(data: nonce(last: last)))
        // The file carries ciphertext || tag. Appended part by part: `combined` would first copy both behind the nonce.
        box.ciphertext.withUnsafeBytes { output.append(contentsOf: $0) }
        box.tag.withUnsafeBytes { output.append(contentsOf: $0) }
    }

    /// Appends the plaintext and returns true when the chunk authenticates under this counter and flag; appends
    /// nothing otherwise.
    func open(_ sealed: UnsafeRawBufferPointer, last: Bool, into output: inout [UInt8]) -> Bool {
        guard sealed.count >= Self.tagSize else { return false }
        let body = UnsafeRawBufferPointer(rebasing: sealed.dropLast(Self.tagSize))
        let tag = UnsafeRawBufferPointer(rebasing: sealed.suffix(Self.tagSize))
        guard let box = try? ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce(last: last)), ciphertext: body, tag: tag),
              let plaintext = try? ChaChaPoly.open(box, using: key) else { return false }
        plaintext.withUnsafeBytes { output.append(contentsOf: $0) }
        return true
    }
}

/// Cuts a stream of bytes into pieces of `size`, handing a piece on only once a byte after it has arrived: in
/// STREAM the last chunk is sealed differently, and only the end of the input tells which chunk is the last.
/// Pieces are handed on straight from the input where they lie in it whole; only a piece cut by the caller's
/// splits is copied.
struct LookaheadChunker: Sendable {
    let size: Int
    /// At most `size` bytes: the start of the next piece, or the last one.
    private(set) var pending: [UInt8] = []

    init(size: Int) {
        self.size = size
        pending.reserveCapacity(size)
    }

    /// `body` gets each piece with more bytes after it, and `state` (passed through so that it can be a sibling of
    /// the chunker in the caller, not captured).
    mutating func feed<State>(_ bytes: UnsafeRawBufferPointer, _ state: inout State, _ body: (UnsafeRawBufferPointer, inout State) throws -> Void) rethrows {
        var rest = bytes[...]
        if !pending.isEmpty || rest.count <= size {
            let room = size - pending.count
            guard rest.count > room else { pending.append(contentsOf: rest); return }
            pending.append(contentsOf: rest.prefix(room))
            rest = rest.dropFirst(room)
            try pending.withUnsafeBytes { try body($0, &state) }
            pending.removeAll(keepingCapacity: true)
        }
        while rest.count > size {
            try body(UnsafeRawBufferPointer(rebasing: rest.prefix(size)), &state)
            rest = rest.dropFirst(size)
        }
        pending.append(contentsOf: rest)
    }
}

/// Splits plaintext into 64 KiB chunks and seals them; the last (possibly full) chunk at `finish`.
struct StreamSealer: Sendable {
    var cipher: ChunkCipher
    private var chunker = LookaheadChunker(size: ChunkCipher.chunkSize)

    init(key: SymmetricKey, counter: UInt64) {
        cipher = ChunkCipher(key: key, counter: counter)
    }

    mutating func feed(_ plaintext: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        chunker.feed(plaintext, &cipher) { chunk, cipher in
            cipher.seal(chunk, last: false, into: &output)
            cipher.counter += 1
        }
    }

    /// Seals what is left as the last chunk: empty only when the whole payload is.
    mutating func finish(into output: inout [UInt8]) {
        precondition(!chunker.pending.isEmpty || cipher.counter == 0, "age: the last chunk would be empty (resumed at or past the end of the plaintext)")
        chunker.pending.withUnsafeBytes { cipher.seal($0, last: true, into: &output) }
    }
}

/// Opens sealed chunks as they arrive and hands out only authenticated plaintext. A full chunk is opened once a
/// byte after it has arrived (then it must not be the last) or at the end of the input.
struct StreamOpener: Sendable {
    var cipher: ChunkCipher
    private var chunker = LookaheadChunker(size: ChunkCipher.sealedChunkSize)

    init(key: SymmetricKey) {
        cipher = ChunkCipher(key: key, counter: 0)
    }

    mutating func feed(_ sealed: UnsafeRawBufferPointer, into output: inout [UInt8]) throws {
        try chunker.feed(sealed, &cipher) { chunk, cipher in try Self.openFollowed(chunk, cipher: &cipher, into: &output) }
    }

    /// A full chunk with more bytes after it. If it authenticates only as the last chunk, its plaintext is
    /// genuine and is handed out, but the bytes after it are an error.
    private static func openFollowed(_ chunk: UnsafeRawBufferPointer, cipher: inout ChunkCipher, into output: inout [UInt8]) throws {
        if cipher.open(chunk, last: false, into: &output) {
            cipher.counter += 1
            return
        }
        guard cipher.open(chunk, last: true, into: &output) else { throw failed(cipher.counter) }
        throw AgeError(.trailingData, "the age file has data after its last chunk (chunk \(cipher.counter))")
    }

    mutating func finish(into output: inout [UInt8]) throws {
        let count = chunker.pending.count
        let chunk = cipher.counter
        guard count > 0 else {
            throw AgeError(.truncated, chunk == 0 ? "the age file has a header but no payload" : "the age file ends after chunk \(chunk - 1), before its last chunk")
        }
        guard count >= ChunkCipher.tagSize else { throw AgeError(.truncated, "the age file ends inside chunk \(chunk)") }
        guard count > ChunkCipher.tagSize || chunk == 0 else {
            throw AgeError(.badPayload, "the age file's last chunk (\(chunk)) is empty, which only an empty file may have")
        }
        try chunker.pending.withUnsafeBytes { bytes in
            if cipher.open(bytes, last: true, into: &output) { return }
            // A full chunk that is not the last: what it holds is genuine, but the file stops after it.
            if count == ChunkCipher.sealedChunkSize, cipher.open(bytes, last: false, into: &output) {
                throw AgeError(.truncated, "the age file ends after chunk \(chunk), before its last chunk")
            }
            throw Self.failed(chunk)
        }
    }

    private static func failed(_ chunk: UInt64) -> AgeError {
        AgeError(.badPayload, "chunk \(chunk) of the age payload failed authentication: the file is damaged or was altered")
    }
}
