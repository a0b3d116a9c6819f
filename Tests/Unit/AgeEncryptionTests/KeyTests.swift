import AgeEncryption
import Foundation
import PipelineCore
import Testing

@Suite("age keys and key files")
struct KeyTests {
    /// The spec's example identity (32 bytes of 0x42 in Bech32) and its recipient.
    static let specIdentity = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
    static let specRecipient = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"

    @Test("the spec's example identity gives its recipient, and both encode back the same")
    func specExample() throws {
        let identity = try AgeX25519Identity(parsing: Self.specIdentity)
        #expect(identity.secretKeyString == Self.specIdentity)
        #expect(identity.recipient.description == Self.specRecipient)
        #expect(try AgeX25519Recipient(parsing: Self.specRecipient) == identity.recipient)
        #expect(try AgeX25519Identity(secretKey: [UInt8](repeating: 0x42, count: 32)).secretKeyString == Self.specIdentity)
    }

    @Test("generated keys round-trip through their strings")
    func generated() throws {
        let identity = AgeX25519Identity.generate()
        let parsed = try AgeX25519Identity(parsing: identity.secretKeyString)
        #expect(parsed.recipient == identity.recipient)
        #expect(try AgeX25519Recipient(parsing: identity.recipient.description) == identity.recipient)
        #expect(identity.secretKeyString.hasPrefix("AGE-SECRET-KEY-1") && identity.recipient.description.hasPrefix("age1"))
    }

    @Test("malformed keys are refused with a message that does not repeat them", arguments: [
        (specIdentity.lowercased(), AgeErrorCode.badKey),  // identities are upper case
        (specRecipient.uppercased(), .badKey),  // recipients are lower case
        (String(specRecipient.dropLast()) + "q", .badKey),  // checksum
        ("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwJ", .badKey),  // mixed case
        (specRecipient.replacingOccurrences(of: "age1", with: "agf1"), .badKey),
        ("age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87pzf5z", .badKey),
        ("", .badKey),
    ])
    func malformed(text: String, code: AgeErrorCode) {
        let error = #expect(throws: AgeError.self) { _ = try AgeX25519Recipient(parsing: text); _ = try AgeX25519Identity(parsing: text) }
        #expect(error?.code == code, "\(text): \(error.map(String.init(describing:)) ?? "")")
        if !text.isEmpty { #expect(error?.message.contains(text) == false) }
    }

    @Test("post-quantum recipients and identities are named as unsupported")
    func postQuantum() {
        let identity = "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG"
        #expect { try AgeX25519Identity(parsing: identity) } throws: { ($0 as? AgeError)?.code == .unsupportedRecipient }
    }

    @Test("identity files: comments, blank lines, CRLF; a bad line is named by number, never shown")
    func identityFile() throws {
        let second = AgeX25519Identity.generate()
        let text = "# created: 2024-01-01T00:00:00Z\n# public key: \(Self.specRecipient)\n\(Self.specIdentity)\r\n\n\(second.secretKeyString)\n"
        let identities = try AgeFiles.parseIdentities(text)
        #expect(identities.map(\.recipient) == [try AgeX25519Recipient(parsing: Self.specRecipient), second.recipient])
        let broken = "# key\n" + String(Self.specIdentity.dropLast()) + "Q\n"
        let error = #expect(throws: AgeError.self) { try AgeFiles.parseIdentities(broken) }
        #expect(error?.message.hasPrefix("line 2 ") == true && error?.message.contains("GFPYYSJZ") == false, "\(error.map(String.init(describing:)) ?? "")")
        #expect { try AgeFiles.parseIdentities("# nothing\n\n") } throws: { ($0 as? AgeError)?.code == .badKey }
    }

    @Test("recipient files as age -R reads them")
    func recipientFile() throws {
        let other = AgeX25519Identity.generate().recipient
        #expect(try AgeFiles.parseRecipients("# mine\n\(Self.specRecipient)\n\n\(other)\n") == [try AgeX25519Recipient(parsing: Self.specRecipient), other])
        #expect { try AgeFiles.parseRecipients("\(Self.specRecipient)\nssh-ed25519 AAAA\n") } throws: { ($0 as? AgeError)?.message.hasPrefix("line 2 ") == true }
    }

    @Test("keygenFile writes age-keygen's layout, with the time in RFC 3339")
    func keygenFile() throws {
        let identity = try AgeX25519Identity(parsing: Self.specIdentity)
        let date = Date(timeIntervalSince1970: 1_136_214_245)  // 2006-01-02T15:04:05Z
        #expect(AgeFiles.keygenFile(identity, created: date, timeZone: TimeZone(identifier: "UTC")!)
            == "# created: 2006-01-02T15:04:05Z\n# public key: \(Self.specRecipient)\n\(Self.specIdentity)\n")
        #expect(AgeFiles.keygenFile(identity, created: date, timeZone: TimeZone(secondsFromGMT: -7 * 3600)!).hasPrefix("# created: 2006-01-02T08:04:05-07:00\n"))
        #expect(try AgeFiles.parseIdentities(AgeFiles.keygenFile(identity, created: date)).first?.recipient == identity.recipient)
    }

    @Test("printing an identity or a passphrase shows no secret")
    func redaction() {
        let identity = AgeX25519Identity.generate()
        let secret = identity.secretKeyString
        var dumped = ""
        dump(identity, to: &dumped)
        for text in ["\(identity)", String(reflecting: identity), "\([AgeIdentity.x25519(identity)])", dumped] {
            #expect(!text.contains(secret) && text.contains(identity.recipient.description), "\(text)")
        }
        #expect(!dumped.contains("privateKey"), "\(dumped)")
        #expect(!"\(AgeIdentity.passphrase("hunter2"))".contains("hunter2") && !"\(AgeRecipient.passphrase("hunter2"))".contains("hunter2"))
    }
}
