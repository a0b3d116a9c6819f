import Foundation
import PipelineCore

/// The text formats of age's command-line tools: identity files (`age-keygen` output, `age -i`) and recipient
/// files (`age -R`). Lines starting with `#` and empty lines are ignored; a bad line is named by its number only,
/// never by its content, since it may be a secret key.
public enum AgeFiles {
    public static func parseIdentities(_ text: String) throws -> [AgeX25519Identity] {
        let identities = try parseLines(text, what: "identity") { try AgeX25519Identity(parsing: $0) }
        guard !identities.isEmpty else { throw AgeError.key("the identity file holds no secret key (AGE-SECRET-KEY-1…)") }
        return identities
    }

    public static func parseRecipients(_ text: String) throws -> [AgeX25519Recipient] {
        let recipients = try parseLines(text, what: "recipient") { try AgeX25519Recipient(parsing: $0) }
        guard !recipients.isEmpty else { throw AgeError.key("the recipients file holds no recipient (age1…)") }
        return recipients
    }

    private static func parseLines<Key>(_ text: String, what: String, _ parse: (String) throws -> Key) throws -> [Key] {
        var keys: [Key] = []
        // Split on bytes: as a Swift Character, "\r\n" is one and would not split on "\n".
        for (number, rawLine) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            // Like Go's line scanner: a CR before the LF is part of the line ending.
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            do { keys.append(try parse(String(decoding: line, as: UTF8.self))) } catch let error as AgeError {
                throw AgeError(error.code, "line \(number + 1) is not an age \(what): \(error.message)")
            }
        }
        return keys
    }

    /// Exactly what `age-keygen` writes: the creation time (RFC 3339, seconds, in `timeZone` as age-keygen
    /// uses the local one), the public key, and the secret key.
    public static func keygenFile(_ identity: AgeX25519Identity, created: Date, timeZone: TimeZone = .current) -> String {
        "# created: \(rfc3339(created, timeZone: timeZone))\n# public key: \(identity.recipient)\n\(identity.secretKeyString)\n"
    }

    static func rfc3339(_ date: Date, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let offset = timeZone.secondsFromGMT(for: date)
        let zone = offset == 0 ? "Z" : (offset < 0 ? "-" : "+") + digits(abs(offset) / 3600, 2) + ":" + digits(abs(offset) % 3600 / 60, 2)
        return digits(parts.year ?? 0, 4) + "-" + digits(parts.month ?? 0, 2) + "-" + digits(parts.day ?? 0, 2) + "T" + digits(parts.hour ?? 0, 2) + ":"
            + digits(parts.minute ?? 0, 2) + ":" + digits(parts.second ?? 0, 2) + zone
    }

    private static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
