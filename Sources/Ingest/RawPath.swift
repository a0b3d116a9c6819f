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
