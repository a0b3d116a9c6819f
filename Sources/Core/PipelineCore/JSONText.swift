/// Small pieces of JSON text for hot paths (one progress line per file), where building a dictionary for
/// `JSONSerialization` costs more than the work being reported.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included, escaped as RFC 8259 requires.
    public static func quoted(_ text: String) -> String {
        // Most text (file paths) needs no escape: one pass over its bytes, one copy.
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }) {
            return "\"" + text + "\""
        }
        var result = "\""
        result.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case let control where control.value < 0x20:
                let hex = String(control.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
