/// How `uploader discs` names each disc's source: `--label-template "{volume} #{n}"`.
///
/// Placeholders: `{volume}` the disc's volume label (ISO 9660 volume identifier, trimmed), `{created}` the volume's
/// creation date (`YYYY-MM-DD`, empty when the disc has none), `{n}` a counter: the lowest number from the first
/// number on that makes the label one the catalog does not hold yet. `{{` and `}}` are literal braces. The
/// template must hold `{n}`, so that two discs with the same volume label never share a source.
public struct DiscLabelTemplate: Sendable, Hashable {
    public enum Part: Sendable, Hashable {
        case text(String)
        case volume
        case created
        case number
    }

    public static let standard = "{volume} #{n}"

    public let text: String
    public let parts: [Part]

    /// Parses a template; the error says what is wrong (an unknown placeholder, an unclosed brace, no `{n}`).
    public init(_ text: String) throws(DiscLabelTemplateError) {
        var parts: [Part] = []
        var literal = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "{", next < text.endIndex, text[next] == "{" {
                literal.append("{")
                index = text.index(after: next)
            } else if character == "}", next < text.endIndex, text[next] == "}" {
                literal.append("}")
                index = text.index(after: next)
            } else if character == "{" {
                guard let close = text[next...].firstIndex(of: "}") else {
                    throw DiscLabelTemplateError("a \"{\" is not closed (write {{ for a brace)")
                }
                let name = String(text[next..<close])
                let part: Part
                switch name {
                case "volume": part = .volume
                case "created": part = .created
                case "n": part = .number
                default: throw DiscLabelTemplateError("unknown placeholder {\(name)} (use {volume}, {created}, {n})")
                }
                if !literal.isEmpty { parts.append(.text(literal)) }
                literal = ""
                parts.append(part)
                index = text.index(after: close)
            } else if character == "}" {
                throw DiscLabelTemplateError("a \"}\" without its \"{\" (write }} for a brace)")
            } else {
                literal.append(character)
                index = next
            }
        }
        if !literal.isEmpty { parts.append(.text(literal)) }
        guard parts.contains(.number) else {
            throw DiscLabelTemplateError("it must contain {n}, so that two discs with the same volume label get labels of their own")
        }
        self.text = text
        self.parts = parts
    }

    /// Whether the label uses the volume label (then a disc without one needs a name from the person or a fallback).
    public var usesVolume: Bool { parts.contains(.volume) }

    /// The label for these values, trimmed; runs of white space inside become one space.
    public func label(volume: String, created: String?, number: Int) -> String {
        var result = ""
        for part in parts {
            switch part {
            case .text(let text): result += text
            case .volume: result += volume
            case .created: result += created ?? ""
            case .number: result += String(number)
            }
        }
        return result.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// The first label from `first` on that `isTaken` does not refuse (at most 100,000 tries).
    public func firstFreeLabel(volume: String, created: String?, from first: Int, isTaken: (String) async throws -> Bool) async throws -> String? {
        for number in first..<(first + 100_000) {
            let candidate = label(volume: volume, created: created, number: number)
            if try await !isTaken(candidate) { return candidate }
        }
        return nil
    }
}

/// A `--label-template` that cannot be used; the message never repeats more than the placeholder at fault.
public struct DiscLabelTemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A volume label as read from a disc, made fit for a source label: trimmed, underscores (ISO 9660 d-characters
/// have no space) shown as spaces, nothing printable left → nil.
public enum DiscVolumeName {
    public static func display(_ raw: String) -> String? {
        let cleaned = raw.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }
            .map { $0 == "_" ? " " : Character($0) }
        let text = String(cleaned).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return text.isEmpty ? nil : text
    }
}
