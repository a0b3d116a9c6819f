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

    @Test func controlCharactersAreEscapedNotCopied() {
        #expect(JSONText.quoted("a\u{01}b") == "\"a\\u0001b\"")
        #expect(!JSONText.quoted("x\ny").contains("\n"))
    }
}
