import Crypto

/// The last line of the canonical request: what the signature says about the body.
public enum PayloadHash: Sendable, Hashable {
    /// The body is not covered by the signature (S3 accepts this; presigned URLs always use it).
    case unsigned
    /// Lower-case hex SHA-256 of the exact body bytes.
    case sha256Hex(String)

    /// SHA-256 of an empty body, the value for GET/HEAD/DELETE without a body.
    public static let emptySHA256: PayloadHash = .sha256Hex(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

    public static func sha256(of bytes: some Sequence<UInt8>) -> PayloadHash {
        .sha256Hex(Hex.encode(SHA256Digests.digest(bytes)))
    }

    /// The value for the canonical request and the `x-amz-content-sha256` header.
    /// Hex is lower-cased because that is the only spelling AWS produces and compares against.
    public var headerValue: String {
        switch self {
        case .unsigned: "UNSIGNED-PAYLOAD"
        case .sha256Hex(let hex): hex.lowercased()
        }
    }
}

enum SHA256Digests {
    static func digest(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var hasher = SHA256()
        // Contiguous input (Array, Data, String.UTF8View…) is hashed in place; anything else is buffered.
        let done: Void? = bytes.withContiguousStorageIfAvailable { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        if done == nil {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(4096)
            for byte in bytes {
                buffer.append(byte)
                if buffer.count == 4096 {
                    hasher.update(data: buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            hasher.update(data: buffer)
        }
        return Array(hasher.finalize())
    }

    static func hex(_ string: String) -> String {
        Hex.encode(Array(SHA256.hash(data: Array(string.utf8))))
    }
}

enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
