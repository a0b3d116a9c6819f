import Crypto
import NIOCore
import PipelineCore

/// Incremental SHA-256 of a byte stream, with the count of bytes seen, giving the catalog's lower-case hex form.
public struct SHA256Stream: Sendable {
    private var hasher = SHA256()
    public private(set) var byteCount: Int64 = 0

    public init() {}

    public mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        byteCount += Int64(buffer.readableBytes)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
        byteCount += Int64(bytes.count)
    }

    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let array = Array(bytes)
        array.withUnsafeBytes { update($0) }
    }

    /// The digest as 64 lower-case hex characters (the `hash` column's form). The stream can still be updated and
    /// finalized again: finalizing works on a copy.
    public func finalize() -> String {
        Self.hex(hasher.finalize())
    }

    /// SHA-256 of a whole byte sequence in one call.
    public static func hash(_ bytes: some Sequence<UInt8>) -> String {
        var stream = SHA256Stream()
        stream.update(bytes)
        return stream.finalize()
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        Array(digest).hexString
    }
}
