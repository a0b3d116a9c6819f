import Crypto
import Foundation
import PipelineCore

/// Streaming decryption of an age file. Feed the file's bytes in any splits: the header is parsed once it is
/// complete (its MAC checked, the file key unwrapped), then plaintext comes out chunk by chunk, each only after it
/// authenticated. After an error every call throws that error again. Memory: the header (at most 1 MiB, a few
/// hundred bytes in practice) and one 64 KiB chunk, whatever the size of the file or of the pieces fed.
public struct AgeDecryptor: Sendable {
    private let identities: [AgeIdentity]
    /// The header and nonce while they arrive.
    private var buffer: [UInt8] = []
    private var scanned = 0
    private var headerEnd: Int?
    private var fileKey: FileKey?
    private var opener: StreamOpener?
    private var failure: AgeError?
    private var finished = false

    public init(identities: [AgeIdentity]) {
        self.identities = identities
    }

    /// The header's size in bytes, nonce included, once it has been read.
    public var headerSize: Int? { opener == nil ? nil : headerEnd.map { $0 + 16 } }

    /// The unwrapped file key, for tests that check it against known values.
    package var fileKeyBytes: [UInt8]? { fileKey?.bytes }

    public mutating func decrypt(_ ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws {
        if let failure { throw failure }
        precondition(!finished, "AgeDecryptor.decrypt after finish")
        do {
            // The header is looked for a few KiB at a time, so that only it (and not a large first read) is copied.
            var rest = ciphertext[...]
            while opener == nil, !rest.isEmpty {
                let piece = rest.prefix(4096)
                buffer.append(contentsOf: piece)
                rest = rest.dropFirst(piece.count)
                try startPayloadIfReady(into: &output)
            }
            if opener != nil, !rest.isEmpty { try opener!.feed(UnsafeRawBufferPointer(rebasing: rest), into: &output) }
        } catch let error as AgeError {
            failure = error
            throw error
        }
    }

    /// Throws when the file ended early (in the header, before or inside the last chunk) or the last chunk fails.
    public mutating func finish(into output: inout [UInt8]) throws {
        if let failure { throw failure }
        precondition(!finished, "AgeDecryptor.finish called twice")
        do {
            guard opener != nil else {
                if buffer.isEmpty { throw AgeError.header("the file is empty") }
                _ = try AgeHeader.end(in: buffer, scanned: &scanned)
                throw AgeError.header(headerEnd == nil ? "the file ends inside its header" : "the file ends before the payload nonce")
            }
            try opener!.finish(into: &output)
            finished = true
        } catch let error as AgeError {
            failure = error
            throw error
        }
    }

    private mutating func startPayloadIfReady(into output: inout [UInt8]) throws {
        if headerEnd == nil {
            guard let end = try AgeHeader.end(in: buffer, scanned: &scanned) else { return }
            let header = try AgeHeader.parse(buffer[..<end])
            let key = try Self.unwrap(header, with: identities)
            fileKey = key  // kept even when the MAC fails (every later call throws), so tests can see what was unwrapped
            guard key.authenticates(header) else {
                throw AgeError(.badHeaderMAC, "the age header's MAC does not match: the header was altered")
            }
            headerEnd = end
        }
        guard let end = headerEnd, let key = fileKey, buffer.count >= end + 16 else { return }
        opener = StreamOpener(key: key.payloadKey(nonce: Array(buffer[end..<(end + 16)])))
        let rest = buffer[(end + 16)...]
        buffer = []
        try rest.withUnsafeBytes { try opener!.feed($0, into: &output) }
    }

    /// Tries each identity on every stanza, in order, as the reference implementation does. A malformed stanza of
    /// a type an identity reads is an error, not a mismatch.
    static func unwrap(_ header: AgeHeader, with identities: [AgeIdentity]) throws -> FileKey {
        let types = header.stanzas.map(\.type)
        if types.contains(StanzaType.scrypt), types.count != 1 {
            throw AgeError.header("an scrypt (passphrase) stanza must be the only one in the header")
        }
        for identity in identities {
            for stanza in header.stanzas {
                let key: FileKey? =
                    switch identity {
                    case .x25519(let identity): try StanzaType.unwrap(stanza, with: identity)
                    case .passphrase(let passphrase, let maxWorkFactor): try StanzaType.unwrap(stanza, passphrase: passphrase, maxWorkFactor: maxWorkFactor)
                    }
                if let key { return key }
            }
        }
        throw noMatch(types: types, identities: identities)
    }

    private static func noMatch(types: [String], identities: [AgeIdentity]) -> AgeError {
        let passphrases = identities.filter { if case .passphrase = $0 { true } else { false } }.count
        if identities.isEmpty { return AgeError(.noMatchingIdentity, "no identity was given to decrypt with") }
        if types == [StanzaType.scrypt] {
            return passphrases > 0
                ? AgeError(.badPassphrase, "the passphrase does not open this age file")
                : AgeError(.noMatchingIdentity, "this age file is encrypted with a passphrase, and no passphrase was given")
        }
        guard types.contains(StanzaType.x25519) else {
            let shown = Set(types).sorted().prefix(4).map { String($0.prefix(32)) }.joined(separator: ", ")
            return AgeError(.unsupportedRecipient, "this age file is only for recipient types that are not supported here (\(shown))")
        }
        let x25519 = types.filter { $0 == StanzaType.x25519 }.count
        return AgeError(.noMatchingIdentity, "none of the \(identities.count) identities given is among this age file's \(x25519) X25519 recipients")
    }
}
