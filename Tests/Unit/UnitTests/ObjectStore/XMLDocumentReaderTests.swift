import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import ObjectStore

/// The uploader reads S3's XML with its own small reader (no libxml2 at start-up); Foundation's `XMLParser` (libxml2)
/// is the reference it is compared with, here only.
@Suite("XML reader: the same trees as Foundation's XMLParser")
struct XMLDocumentReaderTests {
    struct Tree: Equatable, CustomStringConvertible {
        var name: String
        var text: String
        var children: [Tree]
        init(_ node: XMLElementNode) {
            name = node.name
            text = node.text
            children = node.children.map(Tree.init)
        }
        init(name: String, text: String, children: [Tree]) {
            self.name = name
            self.text = text
            self.children = children
        }
        var description: String { "<\(name)>\(text.debugDescription)\(children.map(\.description).joined())</\(name)>" }
    }

    /// What `XMLParser` makes of a document, in the shape the reader gives (local names, direct character data).
    final class ReferenceBuilder: NSObject, XMLParserDelegate {
        var stack: [Tree] = []
        var root: Tree?
        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            stack.append(Tree(name: elementName.split(separator: ":").last.map(String.init) ?? elementName, text: "", children: []))
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if !stack.isEmpty { stack[stack.count - 1].text += string }
        }
        func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
            if !stack.isEmpty { stack[stack.count - 1].text += String(decoding: CDATABlock, as: UTF8.self) }
        }
        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard let finished = stack.popLast() else { return }
            if stack.isEmpty { root = finished } else { stack[stack.count - 1].children.append(finished) }
        }
        static func parse(_ data: Data) -> Tree? {
            let builder = ReferenceBuilder()
            let parser = XMLParser(data: data)
            parser.delegate = builder
            return parser.parse() ? builder.root : nil
        }
    }

    /// A random well-formed document: S3-like names with and without prefixes, attributes in both quotes, text with
    /// every escape, character references, CDATA, comments, processing instructions, CR LF line ends, non-ASCII.
    static func randomDocument(_ random: inout SparseWriteTests.Mix) -> String {
        let names = ["ListBucketResult", "Contents", "Key", "ETag", "Size", "s3:Error", "x:Code", "Message", "Part", "a.b-c_d", "é"]
        let texts = ["photos/2003/été 1.jpg", "a & b", "<tag>", "\"quoted\" 'single'", "100%+1=?", "  spaced  ", "line\r\nbreak",
                     "tab\there", "日本語", "]]", "x > y"]
        func escape(_ text: String) -> String {
            var out = ""
            for character in text {
                switch character {
                case "&": out += Bool.random(using: &random) ? "&amp;" : "&#38;"
                case "<": out += "&lt;"
                case ">": out += Bool.random(using: &random) ? "&gt;" : "&#x3E;"
                case "\"": out += Bool.random(using: &random) ? "&quot;" : "\""
                case "'": out += Bool.random(using: &random) ? "&apos;" : "'"
                case "é": out += Bool.random(using: &random) ? "&#233;" : "é"
                default: out.append(character)
                }
            }
            return out
        }
        func element(depth: Int) -> String {
            let name = names.randomElement(using: &random)!
            var attributes = ""
            for index in 0..<Int.random(in: 0...2, using: &random) {
                let quote = Bool.random(using: &random) ? "\"" : "'"
                attributes += " at\(index)\(Bool.random(using: &random) ? " = " : "=")\(quote)v&amp;\(index)>\(quote)"
            }
            if Int.random(in: 0..<6, using: &random) == 0 { return "<\(name)\(attributes)\(Bool.random(using: &random) ? " " : "")/>" }
            var body = ""
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                switch Int.random(in: 0..<6, using: &random) {
                case 0 where depth < 4: body += element(depth: depth + 1)
                // No CR in CDATA: the reader turns every line end into LF as XML 1.0 (2.11) says, where XMLParser passes
                // a CDATA section's CR LF on as it is.
                case 1: body += "<![CDATA[" + texts.randomElement(using: &random)!.replacingOccurrences(of: "]]", with: "] ]")
                    .replacingOccurrences(of: "\r\n", with: "\n") + " <&> ]]>"
                case 2: body += "<!-- a comment - with <markup> -->"
                case 3: body += "\n  "
                default: body += escape(texts.randomElement(using: &random)!)
                }
            }
            return "<\(name)\(attributes)>\(body)</\(name)\(Bool.random(using: &random) ? " " : "")>"
        }
        let declaration = Bool.random(using: &random) ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" : ""
        return declaration + (Bool.random(using: &random) ? "<!-- before -->" : "") + element(depth: 0) + (Bool.random(using: &random) ? "\n" : "")
    }

    @Test("randomized documents: the same tree as XMLParser")
    func sameTreesAsXMLParser() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var random = SparseWriteTests.Mix(state: seed)
        for _ in 0..<3_000 {
            let document = Self.randomDocument(&random)
            let data = Data(document.utf8)
            let reference = try #require(ReferenceBuilder.parse(data), "XMLParser refused a document the generator meant to be well-formed: \(document)")
            let ours = XMLDocumentReader.parse(data).map(Tree.init)
            #expect(ours == reference, "seed \(seed): \(document)")
            if ours != reference { break }
        }
    }

    @Test("S3's own answers", arguments: [
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated>\
        <Contents><Key>a&amp;b/caf&#233;.txt</Key><Size>12</Size><ETag>&quot;9b2&quot;</ETag></Contents>\
        <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>
        """,
        "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>",
        "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>",
    ])
    func s3Answers(document: String) throws {
        let data = Data(document.utf8)
        #expect(XMLDocumentReader.parse(data).map(Tree.init) == ReferenceBuilder.parse(data))
        #expect(XMLDocumentReader.parse(data) != nil)
    }

    @Test("not well-formed, or with a DOCTYPE: nil", arguments: [
        "", "   ", "text", "<a>", "<a></b>", "<a><b></a></b>", "<a>&unknown;</a>", "<a>&amp</a>", "<a>x ]]> y</a>",
        "<a></a><b></b>", "<a></a>trailing", "<a b></a>", "<a b=c></a>", "<a b=\"c></a>", "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
        "<a><!-- unterminated </a>", "<a><![CDATA[ unterminated</a>", "<a>&#0;</a>", "<a>&#xD800;</a>", "<1a></1a>",
    ])
    func malformed(document: String) {
        #expect(XMLDocumentReader.parse(Data(document.utf8)) == nil, "\(document.debugDescription)")
    }

    @Test("invalid UTF-8 in text is refused, not replaced")
    func invalidUTF8() {
        #expect(XMLDocumentReader.parse(Data([0x3C, 0x61, 0x3E, 0xC3, 0x28, 0x3C, 0x2F, 0x61, 0x3E])) == nil)
    }
}
