/// SigV4's URI encoding: RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`) stay as they are,
/// every other UTF-8 byte becomes `%XX` with upper-case hex.
///
/// This is stricter than `addingPercentEncoding(withAllowedCharacters: .urlPathAllowed)`, which leaves
/// `+`, `=`, `$`, `&`, `:` … alone: S3 would decode `+` in a path as itself but canonicalise it as `%2B`,
/// so anything but this exact set makes signatures fail for some keys.
public enum SigV4URIEncoding {
    /// Percent-encodes `string`. With `encodeSlash: false` the `/` stays literal, which is how an S3
    /// object key becomes a path (`photos/a b.jpg` → `photos/a%20b.jpg`); query names and values use `true`.
    public static func encode(_ string: String, encodeSlash: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            if isUnreserved(byte) || (byte == UInt8(ascii: "/") && !encodeSlash) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(upperHex[Int(byte >> 4)])
                out.append(upperHex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The wire path of an S3 object key below `prefix` (e.g. `"/bucket"` for path-style addressing,
    /// `""` for virtual-hosted style): `prefix + "/" + encode(key, encodeSlash: false)`.
    public static func s3Path(forKey key: String, prefix: String = "") -> String {
        prefix + "/" + encode(key, encodeSlash: false)
    }

    /// Reverses percent-encoding (`%XX` → byte). `+` stays `+`: SigV4 and S3 paths do not use form encoding.
    /// Returns `nil` for a malformed escape or bytes that are not UTF-8.
    public static func decode(_ string: String) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count)
        var bytes = string.utf8.makeIterator()
        while let byte = bytes.next() {
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            guard let high = bytes.next().flatMap(hexValue), let low = bytes.next().flatMap(hexValue) else {
                return nil
            }
            out.append(high << 4 | low)
        }
        // Decoding repairs invalid UTF-8 with U+FFFD; a round trip that changes the bytes means it was invalid.
        let text = String(decoding: out, as: UTF8.self)
        return text.utf8.elementsEqual(out) ? text : nil
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
            UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    private static let upperHex = Array("0123456789ABCDEF".utf8)

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Removes empty and `.` segments and resolves `..` (never above the root), keeping a trailing
    /// slash: what the generic SigV4 algorithm (not S3) does before encoding the path.
    static func normalizePath(_ path: String) -> String {
        var segments: [Substring] = []
        var trailingSlash = false
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            let isLast = index == parts.count - 1
            switch part {
            case "", ".":
                if isLast { trailingSlash = true }
            case "..":
                if !segments.isEmpty { segments.removeLast() }
                if isLast { trailingSlash = true }
            default:
                segments.append(part)
                trailingSlash = false
            }
        }
        if segments.isEmpty { return "/" }
        return "/" + segments.joined(separator: "/") + (trailingSlash ? "/" : "")
    }
}
