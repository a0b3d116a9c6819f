import PipelineCore

/// One recipient stanza: `-> TYPE ARG…` and a base64 body wrapped at 64 columns, ending with a short line.
struct Stanza: Equatable, Sendable {
    var type: String
    var arguments: [String]
    var body: [UInt8]

    /// `-> ` and the arguments, then the body wrapped at 64 columns; a body whose length is a multiple of 48
    /// bytes (also an empty one) ends with an empty line, since the last line must be short.
    func encode(into out: inout [UInt8]) {
        out += Array(("-> " + ([type] + arguments).joined(separator: " ") + "\n").utf8)
        let encoded = Array(AgeBase64.encode(body).utf8)
        var start = 0
        repeat {
            let end = min(start + AgeHeader.columns, encoded.count)
            out += encoded[start..<end]
            out.append(newline)
            start = end
        } while start < encoded.count
        if encoded.count % AgeHeader.columns == 0, !encoded.isEmpty { out.append(newline) }
    }
}

private let newline = UInt8(ascii: "\n")

/// The textual header: the version line, the stanzas, and `--- MAC`. Parsing is strict, so the bytes read are
/// the only encoding of what they parse to, and the MAC can be checked over them as they are.
struct AgeHeader: Sendable {
    static let intro = Array("age-encryption.org/v1\n".utf8)
    static let versionPrefix = Array("age-encryption.org/".utf8)
    static let armorPrefix = Array("-----BEGIN AGE ENCRYPTED FILE-----".utf8)
    static let columns = 64
    static let bytesPerLine = columns / 4 * 3
    /// A bound on how much is buffered while looking for the end of the header.
    static let maximumSize = 1 << 20

    var stanzas: [Stanza]
    var mac: [UInt8]
    /// The bytes the MAC covers: everything up to and including `---`.
    var authenticatedBytes: [UInt8]

    /// The header without its MAC: what the MAC is computed over.
    static func encodeWithoutMAC(_ stanzas: [Stanza]) -> [UInt8] {
        var out = intro
        for stanza in stanzas { stanza.encode(into: &out) }
        out += Array("---".utf8)
        return out
    }

    /// Where a complete header ends (one past its last newline) in `bytes`, or nil while more is needed: the end
    /// of the first line that starts with `---`. Throws as soon as `bytes` cannot start an age v1 header.
    /// `scanned` carries the search position from one call to the next, so bytes arriving one by one cost no more.
    static func end(in bytes: [UInt8], scanned: inout Int) throws -> Int? {
        let prefixLength = min(bytes.count, intro.count)
        if !bytes[..<prefixLength].elementsEqual(intro[..<prefixLength]) { throw notAgeError(bytes) }
        var index = max(scanned, intro.count)
        defer { scanned = index }
        while index + 3 < bytes.count {
            if bytes[index - 1] == newline, bytes[index] == UInt8(ascii: "-"), bytes[index + 1] == UInt8(ascii: "-"), bytes[index + 2] == UInt8(ascii: "-") {
                guard let lineEnd = bytes[index...].firstIndex(of: newline) else { break }
                return lineEnd + 1
            }
            index += 1
        }
        if bytes.count > maximumSize { throw AgeError.header("no end of header in the first \(maximumSize >> 20) MiB") }
        return nil
    }

    private static func notAgeError(_ bytes: [UInt8]) -> AgeError {
        let armor = min(bytes.count, armorPrefix.count)
        if armor > 0, bytes[..<armor].elementsEqual(armorPrefix[..<armor]) {
            return AgeError.header("it is ASCII-armored (-----BEGIN AGE ENCRYPTED FILE-----), which is not supported")
        }
        if bytes.count >= versionPrefix.count, bytes.starts(with: versionPrefix) {
            return AgeError.header("unsupported version line (only age-encryption.org/v1 is read)")
        }
        return AgeError.header("it does not start with \"age-encryption.org/v1\"")
    }

    /// Parses a complete header, `bytes` being exactly what `end(in:)` delimited.
    static func parse(_ bytes: ArraySlice<UInt8>) throws -> AgeHeader {
        guard bytes.starts(with: intro) else { throw notAgeError(Array(bytes)) }
        var lines = bytes[(bytes.startIndex + intro.count)...].split(separator: newline, omittingEmptySubsequences: false)
        guard lines.last?.isEmpty == true else { throw AgeError.header("the header does not end with a newline") }
        lines.removeLast()
        var stanzas: [Stanza] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            if line.starts(with: "---".utf8) {
                guard index == lines.count - 1 else { throw AgeError.header("lines follow the MAC line") }
                guard !stanzas.isEmpty else { throw AgeError.header("the header has no recipient stanza") }
                let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
                guard parts.count == 2, parts[0].elementsEqual("---".utf8), let mac = AgeBase64.decode(parts[1]), mac.count == 32 else {
                    throw AgeError.header("malformed MAC line")
                }
                let macStart = line.startIndex + 3
                return AgeHeader(stanzas: stanzas, mac: mac, authenticatedBytes: Array(bytes[bytes.startIndex..<macStart]))
            }
            stanzas.append(try parseStanza(lines, at: &index))
        }
        throw AgeError.header("the header has no MAC line")
    }

    private static func parseStanza(_ lines: [ArraySlice<UInt8>], at index: inout Int) throws -> Stanza {
        let opening = lines[index]
        let parts = opening.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].elementsEqual("->".utf8) else { throw AgeError.header("malformed stanza opening line") }
        let arguments = parts.dropFirst()
        guard arguments.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (33...126).contains($0) } }) else {
            throw AgeError.header("a stanza argument is empty or has a character outside printable ASCII")
        }
        let strings = arguments.map { String(decoding: $0, as: UTF8.self) }
        var body: [UInt8] = []
        index += 1
        while index < lines.count {
            let line = lines[index]
            index += 1
            guard let decoded = AgeBase64.decode(line) else {
                if line.starts(with: "---".utf8) || line.starts(with: "->".utf8) {
                    throw AgeError.header("a stanza ends without a short body line")
                }
                throw AgeError.header("a stanza body line is not canonical unpadded base64")
            }
            guard decoded.count <= bytesPerLine else { throw AgeError.header("a stanza body line is longer than 64 columns") }
            body += decoded
            if decoded.count < bytesPerLine { return Stanza(type: strings[0], arguments: Array(strings.dropFirst()), body: body) }
        }
        throw AgeError.header("the header ends inside a stanza")
    }
}
