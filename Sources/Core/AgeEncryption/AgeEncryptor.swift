import Crypto
import Foundation
import PipelineCore

/// Streaming encryption to the age format (age-encryption.org/v1). Write `header` first, then what `encrypt`
/// and `finish` append. Memory stays at one 64 KiB chunk whatever the file's size. (On glibc, a program streaming
/// GiBs should raise the heap trim threshold first, as SystemIO's `HeapTuning` does: swift-crypto allocates and
/// frees 64-128 KiB per chunk.)
public struct AgeEncryptor: Sendable {
    /// Plaintext bytes per payload chunk, as the spec fixes it.
    public static let chunkSize = ChunkCipher.chunkSize

    /// The header with its MAC line, then the 16-byte payload nonce: the first bytes of the file.
    public let header: [UInt8]
    private let fileKey: FileKey
    private let nonce: [UInt8]
    private var sealer: StreamSealer
    private var finished = false

    /// A passphrase must be the only recipient (the spec's rule: a passphrase-encrypted file is authenticated by
    /// the passphrase alone).
    public init(recipients: [AgeRecipient]) throws {
        guard !recipients.isEmpty else { throw AgeError(.invalidRecipients, "no recipient given") }
        let passphrases = recipients.filter { if case .passphrase = $0 { true } else { false } }.count
        guard passphrases == 0 || recipients.count == 1 else {
            throw AgeError(.invalidRecipients, "a passphrase must be the only recipient of a file (\(recipients.count) given)")
        }
        let fileKey = FileKey.random()
        let stanzas = try recipients.map { recipient in
            switch recipient {
            case .x25519(let key): try StanzaType.wrap(fileKey, to: key)
            case .passphrase(let passphrase, let workFactor): try StanzaType.wrap(fileKey, passphrase: passphrase, workFactor: workFactor)
            }
        }
        var header = AgeHeader.encodeWithoutMAC(stanzas)
        header += Array((" " + AgeBase64.encode(fileKey.mac(header)) + "\n").utf8)
        let nonce = randomBytes(16)
        self.init(fileKey: fileKey, nonce: nonce, header: header + nonce, counter: 0)
    }

    private init(fileKey: FileKey, nonce: [UInt8], header: [UInt8], counter: UInt64) {
        self.fileKey = fileKey
        self.nonce = nonce
        self.header = header
        sealer = StreamSealer(key: fileKey.payloadKey(nonce: nonce), counter: counter)
    }

    /// Appends the ciphertext of every chunk completed so far (a full chunk once the byte after it has arrived).
    public mutating func encrypt(_ plaintext: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        precondition(!finished, "AgeEncryptor.encrypt after finish")
        sealer.feed(plaintext, into: &output)
    }

    /// Appends the last chunk (flagged as last); an empty file is one empty last chunk.
    public mutating func finish(into output: inout [UInt8]) {
        precondition(!finished, "AgeEncryptor.finish called twice")
        sealer.finish(into: &output)
        finished = true
    }

    /// Payload chunks for a plaintext of this size (an empty file has one).
    public static func chunkCount(plaintextSize: Int64) -> Int64 {
        max(1, (plaintextSize + Int64(chunkSize) - 1) / Int64(chunkSize))
    }

    /// The size of the whole file: `headerSize` (the `header` property's count, nonce included), the plaintext,
    /// and a 16-byte tag per chunk.
    public static func ciphertextSize(plaintextSize: Int64, headerSize: Int) -> Int64 {
        Int64(headerSize) + plaintextSize + Int64(ChunkCipher.tagSize) * chunkCount(plaintextSize: plaintextSize)
    }

    /// Where chunk `chunk`'s ciphertext starts in the file.
    public static func ciphertextOffset(ofChunk chunk: UInt64, headerSize: Int) -> Int64 {
        Int64(headerSize) + Int64(chunk) * Int64(ChunkCipher.sealedChunkSize)
    }

    // MARK: Resuming

    /// What regenerates the same ciphertext from any chunk on: the file key (a secret: store it as such), the
    /// payload nonce and the header. Its description shows none of them.
    public struct ResumeState: Sendable, Codable, Hashable, CustomStringConvertible {
        public let fileKey: Data
        public let nonce: Data
        public let header: Data

        public init(fileKey: Data, nonce: Data, header: Data) {
            self.fileKey = fileKey
            self.nonce = nonce
            self.header = header
        }

        public var description: String { "AgeEncryptor.ResumeState(header: \(header.count) bytes, file key redacted)" }
    }

    public var resumeState: ResumeState {
        ResumeState(fileKey: Data(fileKey.bytes), nonce: Data(nonce), header: Data(header))
    }

    /// Continues an encryption at chunk `atChunk`: feed the plaintext from byte `atChunk × chunkSize` on, and the
    /// output is byte for byte what the first encryptor produced from `ciphertextOffset(ofChunk:)` on. The header
    /// is not written again. Throws when the state does not hold together (its key does not authenticate its header).
    public init(resuming state: ResumeState, atChunk: UInt64) throws {
        let header = [UInt8](state.header)
        guard state.fileKey.count == FileKey.size, state.nonce.count == 16, header.count > 16, header.suffix(16).elementsEqual(state.nonce) else {
            throw AgeError(.badResumeState, "the resume state's key, nonce or header has the wrong size")
        }
        let fileKey = FileKey(bytes: [UInt8](state.fileKey))
        let text = Array(header.dropLast(16))
        var scanned = 0
        guard let end = try? AgeHeader.end(in: text, scanned: &scanned), end == text.count, let parsed = try? AgeHeader.parse(text[...]),
              fileKey.authenticates(parsed)
        else { throw AgeError(.badResumeState, "the resume state's header is not an age header that its file key authenticates") }
        self.init(fileKey: fileKey, nonce: [UInt8](state.nonce), header: header, counter: atChunk)
    }
}
