import Foundation
import PipelineCore
import Testing

@Suite struct JSONTextTests {
    @Test(arguments: ["plain", "", "quote \" and \\ backslash", "new\nline\ttab\rreturn", "\u{01}\u{1F} controls",
                      "ünïcödé/日本語/🎞️", "slash/and\u{7F}delete"])
    func quotedTextParsesBackToTheSameString(_ text: String) throws {
        let line = "{\"value\":\(JSONText.quoted(text))}"
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
        #expect(object?["value"] == text)
    }

    /// Random strings over an alphabet of what needs escaping and what does not (most have none of the first,
    /// so the fast path is taken too): every one parses back to itself.
    @Test func randomStringsParseBack() throws {
        let alphabet: [Character] = ["a", "/", " ", "\"", "\\", "\n", "\u{00}", "\u{1F}", "\u{7F}", "é", "日", "🎞️", "\u{2028}"]
        var state: UInt64 = 0x1234_5678
        for round in 0..<2_000 {
            var text = ""
            let escapes = round % 3 == 0
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            for _ in 0..<Int(state >> 59) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let pick = alphabet[Int(state >> 33) % alphabet.count]
                if escapes || !["\"", "\\", "\n", "\u{00}", "\u{1F}"].contains(pick) { text.append(pick) }
            }
            let line = "{\"value\":\(JSONText.quoted(text))}"
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object?["value"] == text, "round \(round): \(line)")
        }
    }

    @Test func controlCharactersAreEscapedNotCopied() {
        #expect(JSONText.quoted("a\u{01}b") == "\"a\\u0001b\"")
        #expect(!JSONText.quoted("x\ny").contains("\n"))
    }
}
