#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AgeEncryption
import ArchiveFormat
import Crypto
import Foundation
import NIOCore
import ObjectStore
import PipelineCore
import SystemIO

/// What a restored file of an encrypted source needs: the keys of its source, and what its plaintext must be.
struct FileDecryption: Sendable {
    let unlock: SourceUnlock
    let plaintextSize: Int64
    /// The catalog's `hash`: HMAC-SHA-256 of the plaintext under the source's dedupe key.
    let keyedHash: String
}

/// A stored age file on its way to disk as plaintext. Checks, in this order: every STREAM chunk's tag (age never
/// hands out an unauthenticated chunk), the ciphertext's SHA-256 against the catalog's `stored_hash` (so a valid
/// age file of another file cannot stand in for it), then the plaintext's size and keyed hash.
struct DecryptingSink {
    private var decryptor: AgeDecryptor
    private var cipherHasher = SHA256()
    private var keyed: ContentHasher
    private(set) var cipherBytes: Int64 = 0
    private(set) var plainBytes: Int64 = 0
    let decryption: FileDecryption

    init(_ decryption: FileDecryption) {
        self.decryption = decryption
        decryptor = AgeDecryptor(identities: decryption.unlock.fileIdentities)
        keyed = ContentHasher(dedupeKey: decryption.unlock.dedupeKey)
    }

    /// The plaintext for these ciphertext bytes (possibly none yet).
    mutating func consume(_ cipher: UnsafeRawBufferPointer, label: String) throws -> [UInt8] {
        cipherHasher.update(bufferPointer: cipher)
        cipherBytes += Int64(cipher.count)
        var plain: [UInt8] = []
        do {
            try decryptor.decrypt(cipher, into: &plain)
        } catch {
            throw Self.failure(error, label: label)
        }
        note(plain)
        return plain
    }

    mutating func finish(label: String) throws -> [UInt8] {
        var plain: [UInt8] = []
        do {
            try decryptor.finish(into: &plain)
        } catch {
            throw Self.failure(error, label: label)
        }
        note(plain)
        return plain
    }

    private mutating func note(_ plain: [UInt8]) {
        plain.withUnsafeBytes { keyed.update($0) }
        plainBytes += Int64(plain.count)
    }

    /// After `finish`: nil when everything matches, else why not.
    func problem(storedSize: Int64, storedSHA256: String) -> String? {
        let cipherDigest = Array(cipherHasher.finalize()).hexString
        if cipherBytes != storedSize || cipherDigest != storedSHA256 {
            return "the archive's copy is \(cipherBytes) bytes with SHA-256 \(cipherDigest), the catalog says \(storedSize) bytes and \(storedSHA256)"
        }
        let keyedDigest = keyed.finalize()
        if plainBytes != decryption.plaintextSize || keyedDigest != decryption.keyedHash {
            return "it decrypts to \(plainBytes) bytes that are not the file the catalog recorded (\(decryption.plaintextSize) bytes)"
        }
        return nil
    }

    static func failure(_ error: any Error, label: String) -> RestoreError {
        if let age = error as? AgeError, age.code == .noMatchingIdentity {
            return RestoreError(.wrongIdentity, "\(label): none of the identities given decrypts it; not restored")
        }
        return RestoreError(.decryptionFailed, "\(label): cannot be decrypted (\(error)): the stored copy was altered or cut short; not restored")
    }
}

extension FileWriter {
    /// An encrypted file: the whole age file is fetched and decrypted into a fresh partial file (no resume from
    /// a partial plaintext), checked, and only then moved into place. A failure leaves nothing behind.
    func writeDecrypted(_ target: SafeDestination.Target, size: Int64, sha256: String, decryption: FileDecryption,
                        modifiedAt: Double?, label: String, fetch: Fetch) async throws -> Int64 {
        let destination = self.destination
        let (descriptor, _) = try await blocking { try destination.openPartial(target, fresh: true) }
        var committed = false
        defer {
            if !committed {
                close(descriptor)
                destination.removePartial(target)
            }
        }
        var sink = DecryptingSink(decryption)
        var plainOffset: Int64 = 0
        var fetched: Int64 = 0
        for try await chunk in try await fetch(0) {
            guard fetched + Int64(chunk.readableBytes) <= size else {
                throw RestoreError(.checksumMismatch, "\(label): the archive returned more than the \(size) bytes recorded")
            }
            fetched += Int64(chunk.readableBytes)
            await progress.downloaded(Int64(chunk.readableBytes))
            let plain = try chunk.withUnsafeReadableBytes { try sink.consume($0, label: label) }
            try await writePlain(plain, descriptor: descriptor, at: plainOffset)
            plainOffset += Int64(plain.count)
        }
        let tail = try sink.finish(label: label)
        try await writePlain(tail, descriptor: descriptor, at: plainOffset)
        plainOffset += Int64(tail.count)
        if let problem = sink.problem(storedSize: size, storedSHA256: sha256) {
            throw RestoreError(.checksumMismatch, "\(label): \(problem); not restored")
        }
        committed = true  // commit closes the descriptor, whatever happens
        do {
            try await blocking { [plainOffset] in try destination.commit(descriptor, to: target, modifiedAt: modifiedAt, length: plainOffset) }
        } catch {
            destination.removePartial(target)
            throw error
        }
        return fetched
    }

    private func writePlain(_ plain: [UInt8], descriptor: Int32, at offset: Int64) async throws {
        guard !plain.isEmpty else { return }
        // Zeros stay holes (the file is fresh); the commit sets its length.
        try await blocking { try plain.withUnsafeBytes { raw in try writeSkippingZeros(descriptor, raw, at: offset) } }
        noteWritten(Int64(plain.count))
    }
}
