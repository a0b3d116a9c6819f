/// A path kept byte-exact. POSIX file names are bytes, not text: a disc written on an old system may hold names
/// in Latin-1 or Shift-JIS that are not valid UTF-8, and converting them to `String` would silently replace bytes
/// (and could make two different names equal). Open files with ``bytes``; show or catalog ``string``, and check
/// ``isValidUTF8`` to know whether that string is exact.
public struct RawPath: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    public init(stringLiteral value: String) { self.init(value) }

    /// The path as text; invalid UTF-8 sequences appear as U+FFFD.
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// True when ``string`` is exactly these bytes.
    public var isValidUTF8: Bool { String(validating: bytes, as: UTF8.self) != nil }

    public var description: String { string }

    /// Byte-wise order, the order ``SourceWalker`` yields paths in (independent of locale and normalisation).
    public static func < (lhs: RawPath, rhs: RawPath) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    /// The last component (the file name).
    public var lastComponent: RawPath {
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return self }
        return RawPath(bytes: Array(bytes[(slash + 1)...]))
    }

    /// `self/component`, or just `component` when self is empty.
    public func appending(_ component: RawPath) -> RawPath {
        if bytes.isEmpty { return component }
        if bytes.last == UInt8(ascii: "/") { return RawPath(bytes: bytes + component.bytes) }
        return RawPath(bytes: bytes + [UInt8(ascii: "/")] + component.bytes)
    }

    /// Calls `body` with a NUL-terminated C string of the bytes (for open/stat).
    func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        var terminated = bytes
        terminated.append(0)
        return try terminated.withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }
}
extension RawPath {
    /// The catalog's text form: the path itself when it is valid UTF-8, otherwise the valid parts with every
    /// other byte written as `\xNN` (the exact bytes are kept beside it in `raw_path`).
    public var catalogText: String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var result = ""
        var index = 0
        while index < bytes.count {
            // Take the longest valid UTF-8 sequence starting here (1-4 bytes), else escape one byte.
            var taken = false
            for length in (1...4).reversed() where index + length <= bytes.count {
                if let scalar = String(validating: bytes[index..<index + length], as: UTF8.self), scalar.unicodeScalars.count == 1 {
                    result += scalar
                    index += length
                    taken = true
                    break
                }
            }
            if !taken {
                result += "\\x" + String(bytes[index], radix: 16, uppercase: true).leftPadded(to: 2)
                index += 1
            }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
