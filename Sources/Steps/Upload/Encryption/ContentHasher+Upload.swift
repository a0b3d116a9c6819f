import ArchiveFormat
import NIOCore

extension ContentHasher {
    /// The run's content hash: keyed for an encrypted source.
    init(_ keys: SourceKeys?) {
        self.init(dedupeKey: keys?.dedupeKey)
    }

    mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { update($0) }
    }
}
