/// Reads the XML that S3 and the instance metadata service send: elements, attributes (skipped), character data,
/// the five predefined entities and character references, CDATA sections, comments and processing instructions.
/// A document with a DOCTYPE is refused (no entity expansion), and so is anything not well-formed.
///
/// Why not Foundation's `XMLParser`: it is FoundationXML, which links libxml2 and through it ICU's 30 MB of data;
/// loading them cost every uploader start 15–20 ms from a cold cache, for a handful of small response documents.
/// A test compares this reader with `XMLParser` on randomized documents.
struct XMLDocumentReader {
    private let bytes: [UInt8]
    private var position = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The root element (namespace prefixes stripped from names), or nil when the document is not well-formed.
    static func parse<Bytes: Collection<UInt8>>(_ data: Bytes) -> XMLElementNode? {
        var reader = XMLDocumentReader(Array(data))
        return reader.document()
    }

    private mutating func document() -> XMLElementNode? {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }  // a UTF-8 byte order mark
        guard skipMisc() else { return nil }
        guard peek(0x3C), let root = element() else { return nil }
        guard skipMisc(), position == bytes.count else { return nil }
        return root
    }

    /// Whitespace, comments and processing instructions (the XML declaration among them); false when malformed.
    private mutating func skipMisc() -> Bool {
        while position < bytes.count {
            if isSpace(bytes[position]) {
                position += 1
            } else if starts("<?") {
                guard skip(past: "?>") else { return false }
            } else if starts("<!--") {
                guard skip(past: "-->") else { return false }
            } else {
                return !starts("<!")  // a DOCTYPE, or markup that has no place here
            }
        }
        return true
    }

    /// An element starting at `<`, through its end tag.
    private mutating func element() -> XMLElementNode? {
        position += 1
        guard let qualifiedName = name() else { return nil }
        // Attributes: name, '=', a quoted value; none is used, each is checked.
        while true {
            let hadSpace = skipSpaces()
            if starts("/>") {
                position += 2
                return XMLElementNode(name: localName(qualifiedName))
            }
            if peek(0x3E) {
                position += 1
                break
            }
            guard hadSpace, name() != nil else { return nil }
            skipSpaces()
            guard peek(0x3D) else { return nil }
            position += 1
            skipSpaces()
            guard position < bytes.count, bytes[position] == 0x22 || bytes[position] == 0x27 else { return nil }
            let quote = bytes[position]
            position += 1
            guard let end = bytes[position...].firstIndex(of: quote), !bytes[position..<end].contains(0x3C) else { return nil }
            position = end + 1
        }
        var node = XMLElementNode(name: localName(qualifiedName))
        var text: [UInt8] = []
        while position < bytes.count {
            if starts("</") {
                position += 2
                guard let closing = name(), closing == qualifiedName else { return nil }
                skipSpaces()
                guard peek(0x3E) else { return nil }
                position += 1
                guard let decoded = String(validating: normalizedLineEnds(text), as: UTF8.self) else { return nil }
                node.text = decoded
                return node
            } else if starts("<![CDATA[") {
                position += 9
                guard let end = find("]]>") else { return nil }
                text += bytes[position..<end]
                position = end + 3
            } else if starts("<!--") {
                guard skip(past: "-->") else { return nil }
            } else if starts("<?") {
                guard skip(past: "?>") else { return nil }
            } else if peek(0x3C) {
                guard let child = element() else { return nil }
                node.children.append(child)
            } else if peek(0x26) {
                guard let character = reference() else { return nil }
                text += character
            } else {
                let start = position
                while position < bytes.count, bytes[position] != 0x3C, bytes[position] != 0x26 { position += 1 }
                let run = bytes[start..<position]
                // "]]>" may not appear in character data.
                if run.count >= 3, find("]]>", in: start..<position) != nil { return nil }
                text += run
            }
        }
        return nil  // the document ended inside the element
    }

    /// `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` `&#NN;` `&#xHH;` as UTF-8; nil for anything else.
    private mutating func reference() -> [UInt8]? {
        guard let end = bytes[position...].prefix(12).firstIndex(of: 0x3B) else { return nil }
        let body = bytes[(position + 1)..<end]
        position = end + 1
        switch Array(body) {
        case Array("amp".utf8): return [0x26]
        case Array("lt".utf8): return [0x3C]
        case Array("gt".utf8): return [0x3E]
        case Array("quot".utf8): return [0x22]
        case Array("apos".utf8): return [0x27]
        default:
            guard body.first == 0x23 else { return nil }
            var digits = body.dropFirst()
            var radix = 10
            if digits.first == 0x78 {
                radix = 16
                digits = digits.dropFirst()
            }
            guard !digits.isEmpty, let value = UInt32(String(decoding: digits, as: UTF8.self), radix: radix),
                  let scalar = Unicode.Scalar(value), value == 0x9 || value == 0xA || value == 0xD || value >= 0x20 else { return nil }
            return Array(String(Character(scalar)).utf8)
        }
    }

    /// An XML name (letters, digits, `_`, `:`, `-`, `.`, and any non-ASCII byte), or nil when there is none.
    private mutating func name() -> String? {
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            let isNameByte = byte >= 0x80 || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A)
                || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F || byte == 0x3A || byte == 0x2D || byte == 0x2E
            guard isNameByte else { break }
            position += 1
        }
        guard position > start else { return nil }
        let first = bytes[start]
        guard !(first >= 0x30 && first <= 0x39), first != 0x2D, first != 0x2E else { return nil }
        return String(validating: bytes[start..<position], as: UTF8.self)
    }

    private func localName(_ qualified: String) -> String {
        qualified.split(separator: ":").last.map(String.init) ?? qualified
    }

    /// XML hands every line end to the application as `\n`.
    private func normalizedLineEnds(_ text: [UInt8]) -> [UInt8] {
        guard text.contains(0x0D) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            if text[index] == 0x0D {
                out.append(0x0A)
                if index + 1 < text.count, text[index + 1] == 0x0A { index += 1 }
            } else {
                out.append(text[index])
            }
            index += 1
        }
        return out
    }

    private func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    @discardableResult
    private mutating func skipSpaces() -> Bool {
        let start = position
        while position < bytes.count, isSpace(bytes[position]) { position += 1 }
        return position > start
    }

    private func peek(_ byte: UInt8) -> Bool { position < bytes.count && bytes[position] == byte }

    private func starts(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard bytes.count - position >= count else { return false }
        return text.withUTF8Buffer { bytes[position..<(position + count)].elementsEqual($0) }
    }

    private func find(_ text: StaticString, in range: Range<Int>? = nil) -> Int? {
        let range = range ?? position..<bytes.count
        let count = text.utf8CodeUnitCount
        guard range.count >= count else { return nil }
        return text.withUTF8Buffer { needle in
            (range.lowerBound...(range.upperBound - count)).first { bytes[$0..<($0 + count)].elementsEqual(needle) }
        }
    }

    /// Moves past the next `text`; false when it does not occur.
    private mutating func skip(past text: StaticString) -> Bool {
        guard let at = find(text) else { return false }
        position = at + text.utf8CodeUnitCount
        return true
    }
}
