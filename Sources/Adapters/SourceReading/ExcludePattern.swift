/// One `--exclude GLOB`, with fnmatch semantics on paths relative to the source root:
///
/// - `*` matches any run of characters except `/`, `?` one character (a whole UTF-8 character, not a byte),
///   `[abc]`, `[a-z]`, `[!a-z]` (or `[^…]`) a class, `\x` the character x itself;
/// - a `**` segment matches any number of directories, zero included (`a/**/b`, `**/cache`, `tmp/**`);
/// - a pattern without `/` matches the name at any depth (`*.tmp`, `Thumbs.db`), as in rsync and .gitignore;
///   a pattern with `/` matches the whole relative path (a leading `/` is allowed and ignored);
/// - a trailing `/` matches directories only (`cache/`).
///
/// A directory that matches is not entered: everything under it is excluded with it.
public struct ExcludePattern: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String
    private let segments: [[Unit]]
    private let matchesNameOnly: Bool
    private let directoriesOnly: Bool

    public init(_ pattern: String) throws {
        var text = Array(pattern.utf8)
        guard !text.isEmpty, text.contains(where: { $0 != UInt8(ascii: "/") }) else {
            throw IngestError(.invalidArgument, path: pattern, "an exclude pattern must name something")
        }
        self.pattern = pattern
        directoriesOnly = text.last == UInt8(ascii: "/")
        while text.last == UInt8(ascii: "/") { text.removeLast() }
        let anchored = text.first == UInt8(ascii: "/")
        while text.first == UInt8(ascii: "/") { text.removeFirst() }
        matchesNameOnly = !anchored && !text.contains(UInt8(ascii: "/"))
        segments = text.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map { decodeUnits(Array($0)) }
    }

    public var description: String { pattern }

    /// Whether the entry at `relativePath` (bytes, `/`-separated) is excluded.
    public func matches(_ relativePath: RawPath, isDirectory: Bool) -> Bool {
        if directoriesOnly && !isDirectory { return false }
        let parts = relativePath.bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
        if matchesNameOnly {
            guard let name = parts.last else { return false }
            return matchSegment(segments[0][...], decodeUnits(Array(name))[...])
        }
        return matchPath(segments[...], parts.map { decodeUnits(Array($0)) }[...])
    }

    private func matchPath(_ pattern: ArraySlice<[Unit]>, _ path: ArraySlice<[Unit]>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == doubleStar {
            // `**` takes zero or more whole segments.
            var rest = path
            while true {
                if matchPath(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        }
        guard let segment = path.first, matchSegment(first[...], segment[...]) else { return false }
        return matchPath(pattern.dropFirst(), path.dropFirst())
    }
}

/// A character of a pattern or a name: a Unicode scalar, or for bytes that are not valid UTF-8 the byte value
/// plus 0x110000, so odd names still match byte-exactly.
typealias Unit = UInt32

private let doubleStar: [Unit] = [42, 42]

private func decodeUnits(_ bytes: [UInt8]) -> [Unit] {
    if let text = String(validating: bytes, as: UTF8.self) { return text.unicodeScalars.map { $0.value } }
    return bytes.map { $0 < 0x80 ? Unit($0) : 0x110000 + Unit($0) }
}

/// fnmatch of one segment (no `/` inside), iterative with one backtrack point for `*`.
private func matchSegment(_ pattern: ArraySlice<Unit>, _ name: ArraySlice<Unit>) -> Bool {
    let star: Unit = 42, question: Unit = 63, open: Unit = 91, backslash: Unit = 92
    var p = pattern.startIndex, n = name.startIndex
    var starP: Int?, starN = 0
    while n < name.endIndex {
        if p < pattern.endIndex {
            let c = pattern[p]
            if c == star {
                starP = p; starN = n; p += 1
                continue
            }
            if c == question { p += 1; n += 1; continue }
            if c == open, let (matched, next) = matchClass(pattern, at: p, name[n]) {
                if matched { p = next; n += 1; continue }
            } else {
                var literal = c, next = p + 1
                if c == backslash, p + 1 < pattern.endIndex { literal = pattern[p + 1]; next = p + 2 }
                if literal == name[n] { p = next; n += 1; continue }
            }
        }
        guard let sp = starP else { return false }
        p = sp + 1; starN += 1; n = starN
    }
    while p < pattern.endIndex, pattern[p] == star { p += 1 }
    return p == pattern.endIndex
}

/// `[...]` at `start`: whether `c` is in the class and the index after `]`; nil when the bracket is not closed
/// (then `[` is an ordinary character, as in fnmatch).
private func matchClass(_ pattern: ArraySlice<Unit>, at start: Int, _ c: Unit) -> (Bool, Int)? {
    var i = start + 1
    var negate = false
    if i < pattern.endIndex, pattern[i] == 33 || pattern[i] == 94 { negate = true; i += 1 }
    var matched = false
    var first = true
    while i < pattern.endIndex {
        var low = pattern[i]
        if low == 93 && !first { return (matched != negate, i + 1) }
        first = false
        if low == 92, i + 1 < pattern.endIndex { i += 1; low = pattern[i] }
        var high = low
        if i + 2 < pattern.endIndex, pattern[i + 1] == 45, pattern[i + 2] != 93 {
            high = pattern[i + 2]
            if high == 92, i + 3 < pattern.endIndex { i += 1; high = pattern[i + 2] }
            i += 2
        }
        if low <= c && c <= high { matched = true }
        i += 1
    }
    return nil
}
