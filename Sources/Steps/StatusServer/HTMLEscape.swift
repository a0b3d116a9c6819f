/// Escapes text for HTML element content and attribute values.
public func htmlEscape(_ text: String) -> String {
    var result = ""
    result.reserveCapacity(text.utf8.count)
    for character in text.unicodeScalars {
        switch character {
        case "&": result += "&amp;"
        case "<": result += "&lt;"
        case ">": result += "&gt;"
        case "\"": result += "&quot;"
        case "'": result += "&#39;"
        default:
            // Control characters other than tab and newline have no business in a page.
            if character.value < 0x20 && character != "\t" && character != "\n" {
                result += "\u{FFFD}"
            } else {
                result.unicodeScalars.append(character)
            }
        }
    }
    return result
}
