import Testing
@testable import SourceReading

@Suite struct ExcludePatternTests {
    func matches(_ pattern: String, _ path: String, directory: Bool = false) throws -> Bool {
        try ExcludePattern(pattern).matches(RawPath(path), isDirectory: directory)
    }

    @Test func nameOnlyPatternsMatchAtAnyDepth() throws {
        #expect(try matches("*.tmp", "a.tmp"))
        #expect(try matches("*.tmp", "x/y/z/a.tmp"))
        #expect(try !matches("*.tmp", "x/a.tmp.keep"))
        #expect(try matches("Thumbs.db", "photos/2008/Thumbs.db"))
        #expect(try !matches("Thumbs.db", "photos/2008/thumbs.db"))
    }

    @Test func patternsWithSlashMatchTheWholePath() throws {
        #expect(try matches("a/*.txt", "a/b.txt"))
        #expect(try !matches("a/*.txt", "a/b/c.txt"), "* does not cross /")
        #expect(try !matches("a/*.txt", "x/a/b.txt"))
        #expect(try matches("/a/b", "a/b"))
    }

    @Test func doubleStarSpansDirectories() throws {
        #expect(try matches("a/**/c", "a/c"))
        #expect(try matches("a/**/c", "a/b/x/c"))
        #expect(try !matches("a/**/c", "b/a/c"))
        #expect(try matches("**/cache", "cache", directory: true))
        #expect(try matches("**/cache", "x/y/cache", directory: true))
        #expect(try matches("tmp/**", "tmp/a/b"))
        #expect(try matches("**/*.bak", "deep/er/file.bak"))
    }

    @Test func classesQuestionMarksAndEscapes() throws {
        #expect(try matches("file?.txt", "file1.txt"))
        #expect(try !matches("file?.txt", "file12.txt"))
        #expect(try matches("f?.txt", "fé.txt"), "? is one character, not one byte")
        #expect(try matches("[a-c]x", "bx"))
        #expect(try !matches("[!a-c]x", "bx"))
        #expect(try matches("[^a-c]x", "dx"))
        #expect(try matches("\\*literal", "*literal"))
        #expect(try !matches("\\*literal", "xliteral"))
        #expect(try matches("[ab", "[ab"), "an unclosed bracket is an ordinary character")
    }

    @Test func trailingSlashMeansDirectoriesOnly() throws {
        #expect(try matches("build/", "x/build", directory: true))
        #expect(try !matches("build/", "x/build", directory: false))
    }

    @Test func invalidUTF8NamesMatchByteExactly() throws {
        let name = RawPath(bytes: [0x61, 0xE9, 0x2E, 0x74, 0x6D, 0x70])  // "a\xE9.tmp" in Latin-1
        #expect(try ExcludePattern("*.tmp").matches(name, isDirectory: false))
        #expect(try ExcludePattern("a?.tmp").matches(name, isDirectory: false))
    }

    @Test func emptyPatternIsRefused() {
        #expect(throws: IngestError.self) { try ExcludePattern("") }
        #expect(throws: IngestError.self) { try ExcludePattern("//") }
    }
}
