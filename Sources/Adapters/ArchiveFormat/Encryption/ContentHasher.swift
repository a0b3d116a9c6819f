import Crypto
import PipelineCore

/// A file's content identity as the catalog's `hash` column holds it: SHA-256 in the clear, or for an encrypted
/// source HMAC-SHA-256 keyed with the source's secret dedupe key, so that the catalog never holds a plaintext
/// hash someone could check a guessed file against. The uploader computes it; restore and verify check it.
public struct ContentHasher {
    private enum State {
        case plain(SHA256)
        case keyed(HMAC<SHA256>)
    }

    private var state: State

    /// Plain SHA-256 without a key; keyed with an encrypted source's dedupe key.
    public init(dedupeKey: SymmetricKey?) {
        state = dedupeKey.map { .keyed(HMAC<SHA256>(key: $0)) } ?? .plain(SHA256())
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch state {
        case .plain(var hasher):
            hasher.update(bufferPointer: bytes)
            state = .plain(hasher)
        case .keyed(var mac):
            mac.update(data: bytes)
            state = .keyed(mac)
        }
    }

    /// Lower-case hex.
    public func finalize() -> String {
        switch state {
        case .plain(let hasher): Array(hasher.finalize()).hexString
        case .keyed(let mac): Array(mac.finalize()).hexString
        }
    }
}
