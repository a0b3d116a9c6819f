import ArchiveFormat
import Crypto
import NIOCore
import PipelineCore
import SourceReading

/// A file's content identity as the catalog's `hash` column holds it: SHA-256 in the clear, or for an encrypted
/// source HMAC-SHA-256 keyed with the source's secret dedupe key, so that the catalog never holds a plaintext
/// hash someone could check a guessed file against.
struct ContentHasher {
    private enum State {
        case plain(SHA256Stream)
        case keyed(HMAC<SHA256>)
    }

    private var state: State

    init(_ keys: SourceKeys?) {
        state = keys.map { .keyed($0.contentHasher()) } ?? .plain(SHA256Stream())
    }

    mutating func update(_ buffer: ByteBuffer) {
        switch state {
        case .plain(var hasher):
            hasher.update(buffer)
            state = .plain(hasher)
        case .keyed(var mac):
            buffer.withUnsafeReadableBytes { mac.update(data: $0) }
            state = .keyed(mac)
        }
    }

    func finalize() -> String {
        switch state {
        case .plain(let hasher): hasher.finalize()
        case .keyed(let mac): Array(mac.finalize()).hexString
        }
    }
}
