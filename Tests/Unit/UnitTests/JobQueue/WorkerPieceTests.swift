import ArchiveFormat
import Foundation
import Testing
@testable import ArchiveStep
@testable import JobQueue
@testable import TranscodeStep

@Suite("worker pieces")
struct WorkerUnitTests {
    @Test("backoff grows exponentially, stays within half and all of its ceiling, and is capped")
    func backoff() {
        let backoff = RetryBackoff(base: .seconds(10), maximum: .seconds(300))
        #expect(backoff.delay(afterAttempt: 1, random: 0) == .seconds(5))
        #expect(backoff.delay(afterAttempt: 1, random: 1) == .seconds(10))
        #expect(backoff.delay(afterAttempt: 3, random: 1) == .seconds(40))
        #expect(backoff.delay(afterAttempt: 20, random: 1) == .seconds(300))
        #expect(backoff.delay(afterAttempt: 20, random: 0) == .seconds(150))
        for attempt in 1...8 {
            let delay = backoff.delay(afterAttempt: attempt)
            #expect(delay > .zero && delay <= .seconds(300))
        }
    }

    @Test("already-compressed formats are recognised by name or by their first bytes")
    func compressibility() {
        #expect(Compressibility.isCompressed(name: "IMG_0001.JPG", firstBytes: []))
        #expect(Compressibility.isCompressed(name: "no-extension", firstBytes: [0xFF, 0xD8, 0xFF, 0xE1]))
        #expect(Compressibility.isCompressed(name: "clip", firstBytes: Array("\0\0\0\u{18}ftypmp42".utf8)))
        #expect(!Compressibility.isCompressed(name: "letter.txt", firstBytes: Array("Dear grandma".utf8)))
    }

    @Test("tar headers: checksums valid, long and non-ASCII names in pax records, padding to 512")
    func tarHeaders() {
        let plain = TarFormat.headers(name: "a/b.txt", size: 5, modificationTime: 1_700_000_000)
        #expect(plain.count == 512)
        let stored = Int(String(decoding: plain[148..<154], as: UTF8.self), radix: 8)
        var copy = plain
        for index in 148..<156 { copy[index] = UInt8(ascii: " ") }
        #expect(stored == copy.reduce(0) { $0 + Int($1) })
        let long = TarFormat.headers(name: String(repeating: "ä/", count: 80) + "file", size: 1, modificationTime: 0)
        #expect(long.count % 512 == 0 && long.count > 512)
        #expect(String(decoding: long, as: UTF8.self).contains(" path=" + String(repeating: "ä/", count: 80) + "file\n"))
        // The length counts itself: 9 bytes in all; one more byte of value tips it to two digits (11).
        #expect(TarFormat.paxRecord("path", "x") == Array("9 path=x\n".utf8))
        #expect(TarFormat.paxRecord("path", "xx") == Array("11 path=xx\n".utf8))
        #expect(TarFormat.padding(for: 512).isEmpty && TarFormat.padding(for: 513).count == 511)
    }
}
