import Foundation
import NIOCore
import Testing
import TestSupport
@testable import SourceReading

/// The UDF reader against bridge images made at test time with genisoimage (ISO 9660 + UDF 1.02), and against
/// those images damaged on purpose.
@Suite(.onOwnThreads)
struct UDFReaderTests {
    static func genisoimage() throws -> String {
        try #require(which("genisoimage"), "genisoimage is installed by scripts/test")
    }

    /// A source tree with nested directories, unicode names, an empty file and a file of a few MiB.
    func makeSource(_ dir: TemporaryDirectory) throws -> [String: [UInt8]] {
        let files: [String: [UInt8]] = [
            "big/random.bin": pseudoRandomBytes(3 * 1024 * 1024 + 12345),
            "empty.txt": [],
            "a/b/c/deep.txt": Array("deep".utf8),
            "ünïcödé/日本語.txt": Array("こんにちは".utf8),
            "with space.txt": Array("space".utf8),
            "secret.bin": pseudoRandomBytes(200_000, seed: 99),
        ]
        for (path, bytes) in files { try dir.write("src/" + path, bytes) }
        return files
    }

    /// A bridge image of `src`; `hidden` names are left out of the ISO 9660 and Rock Ridge view only. (genisoimage
    /// builds its UDF tree with the Joliet tree's hiding, so an image with a UDF-only file has no Joliet.)
    func makeImage(_ dir: TemporaryDirectory, hidden: [String] = [], name: String = "udf.iso") throws -> String {
        let image = dir.file(name)
        let views = hidden.isEmpty ? ["-J", "-joliet-long", "-R"] : ["-R"]
        try run(Self.genisoimage(), ["-quiet", "-udf"] + views + hidden.flatMap { ["-hide", $0] } + ["-o", image, dir.file("src")])
        return image
    }

    func readAll(_ image: UDFImage, chunkSize: Int = 1 << 20) async throws -> [String: (size: Int64, sha256: String, largestChunk: Int)] {
        var contents: [String: (Int64, String, Int)] = [:]
        try await image.read(configuration: .init(chunkSize: chunkSize)) { entry, chunks in
            guard case .file = entry.type else { return }
            var hash = SHA256Stream(), largest = 0
            for try await chunk in chunks {
                hash.update(chunk)
                largest = max(largest, chunk.readableBytes)
            }
            contents[entry.path.string] = (hash.byteCount, hash.finalize(), largest)
        }
        return contents
    }

    @Test func listingEqualsTheSourceDirectory() async throws {
        let dir = try TemporaryDirectory()
        let files = try makeSource(dir)
        let path = try makeImage(dir, hidden: ["secret.bin"])
        #expect(try await UDFImage.hasUDF(RawPath(path)))
        let image = try await UDFImage.open(RawPath(path))
        #expect(image.volume.revisionText == "1.02")

        let listed = Dictionary(uniqueKeysWithValues: image.volume.files.map { ($0.path.string, $0) })
        let directories: Set<String> = ["big", "a", "a/b", "a/b/c", "ünïcödé"]
        #expect(Set(listed.keys) == Set(files.keys).union(directories), "names incl. unicode, nested directories")
        for name in directories { #expect(listed[name]?.kind == .directory) }
        for (name, bytes) in files {
            #expect(listed[name]?.kind == .file)
            #expect(listed[name]?.size == Int64(bytes.count), "\(name)")
            #expect(listed[name]?.modificationTime.map { abs($0.timeIntervalSinceNow) < 3600 } == true, "\(name) has its time")
        }
        let contents = try await readAll(image, chunkSize: 64 * 1024)
        for (name, bytes) in files {
            #expect(contents[name]?.size == Int64(bytes.count))
            #expect(contents[name]?.sha256 == SHA256Stream.hash(bytes), "\(name) reads back byte for byte")
        }
        #expect(contents["big/random.bin"]?.largestChunk == 64 * 1024, "bounded chunks")
    }

    @Test func aFileHiddenFromISO9660IsFoundOnlyThroughUDF() async throws {
        let dir = try TemporaryDirectory()
        _ = try makeSource(dir)
        let path = try makeImage(dir, hidden: ["secret.bin"])
        // What libarchive (the ISO 9660 view) sees: everything but the hidden file.
        var isoPaths: [String] = []
        try await ISOImageReader.read(RawPath(path)) { entry, _ in isoPaths.append(entry.path.string) }
        #expect(isoPaths.contains("with space.txt"))
        #expect(!isoPaths.contains("secret.bin"))

        guard case .udf(let udf, let note) = try await ImageView.of(RawPath(path)) else {
            Issue.record("an image with a UDF-only file must be read through UDF")
            return
        }
        #expect(note.contains("secret.bin is only in UDF"), "\(note)")
        #expect(udf.entries.contains { $0.path == "secret.bin" && $0.type == .file })
    }

    @Test func anImageWhoseISO9660ViewCannotBeReadIsReadThroughUDF() async throws {
        let dir = try TemporaryDirectory()
        let files = try makeSource(dir)
        let path = try makeImage(dir, hidden: ["secret.bin"])
        // Point the Primary Volume Descriptor's root directory record (sector 16, offset 156) past the image's end.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let root = 16 * 2048 + 156
        bytes.replaceSubrange((root + 2)..<(root + 10), with: Self.littleEndian(0x7FFF_FFF0, 4) + Self.littleEndian(0x7FFF_FFF0, 4).reversed())
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        await #expect(throws: IngestError.self, "libarchive cannot read this ISO 9660 view") {
            try await ISOImageReader.read(RawPath(path)) { _, _ in }
        }
        guard case .udf(let udf, let note) = try await ImageView.of(RawPath(path)) else {
            Issue.record("an image whose ISO 9660 view cannot be read but whose UDF can is read through UDF")
            return
        }
        #expect(note.contains("read through UDF"), "\(note)")
        let contents = try await readAll(udf)
        #expect(Set(contents.keys) == Set(files.keys))
        for (name, bytes) in files { #expect(contents[name]?.sha256 == SHA256Stream.hash(bytes), "\(name)") }
    }

    @Test func aCompleteBridgeOrPlainISOImageIsReadThroughISO9660() async throws {
        let dir = try TemporaryDirectory()
        _ = try makeSource(dir)
        let bridge = try makeImage(dir)
        guard case .iso9660 = try await ImageView.of(RawPath(bridge)) else {
            Issue.record("every UDF file is in the ISO 9660 view: read as before")
            return
        }
        let plain = dir.file("plain.iso")
        try run(#require(which("xorriso")), ["-as", "mkisofs", "-quiet", "-J", "-R", "-o", plain, dir.file("src")])
        #expect(try await UDFImage.hasUDF(RawPath(plain)) == false)
        guard case .iso9660 = try await ImageView.of(RawPath(plain)) else {
            Issue.record("an image without UDF is read through ISO 9660")
            return
        }
    }

    @Test func aCorruptFileSetDescriptorIsRefusedAndTheImageKeptWhole() async throws {
        let dir = try TemporaryDirectory()
        _ = try makeSource(dir)
        let path = try makeImage(dir, hidden: ["secret.bin"])
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let fileSet = try #require(Self.descriptorSectors(bytes, tag: 256).first, "the image has a File Set Descriptor")
        bytes[fileSet * 2048 + 4] &+= 1  // its tag checksum
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        await #expect { _ = try await UDFImage.open(RawPath(path)) } throws: { error in
            let error = error as? IngestError
            return error?.code == .unreadableUDF && error?.message.contains("checksum") == true && error?.path == path
        }
        guard case .wholeImage(let note) = try await ImageView.of(RawPath(path)) else {
            Issue.record("an image whose UDF cannot be read is kept whole")
            return
        }
        #expect(note.contains("kept whole"))
    }

    @Test func damagedImagesAreRefusedWithOneLine() async throws {
        let dir = try TemporaryDirectory()
        _ = try makeSource(dir)
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: makeImage(dir))))

        func refusal(_ bytes: [UInt8]) async throws -> String? {
            let path = dir.file("damaged.iso")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                _ = try await UDFImage.open(RawPath(path))
                return nil
            } catch let error as IngestError {
                #expect(!error.description.contains("\n"))
                return error.code == .unreadableUDF ? error.message : "other: \(error)"
            }
        }

        // Truncated: cut inside the UDF partition, and before the anchor.
        #expect(try await refusal(Array(original.prefix(original.count / 2)))?.contains("truncated") == true)
        #expect(try await refusal(Array(original.prefix(200 * 2048)))?.contains("Anchor") == true)

        // A bad tag checksum on the anchor and on its copy at the end of the image.
        var anchor = original
        let anchors = Self.descriptorSectors(original, tag: 2)
        #expect(anchors.first == 256)
        for sector in anchors { anchor[sector * 2048 + 4] &+= 1 }
        #expect(try await refusal(anchor)?.contains("Anchor") == true)

        // A bad CRC in a File Entry.
        var entry = original
        let fileEntry = try #require(Self.descriptorSectors(original, tag: 261).last)
        entry[fileEntry * 2048 + 100] &+= 1
        #expect(try await refusal(entry)?.contains("CRC") == true)

        // A loop: the directory a/b/c made to point back at the root directory (whose parent entry, in the
        // block that lists "a", names the root's own File Entry).
        var loop = original
        let (_, fid) = try #require(Self.fileIdentifier(original, named: "c"))
        let a = try #require(Self.fileIdentifier(original, named: "a"))
        let rootICB = try #require(Self.parentICB(original, ofDirectoryHolding: a))
        loop.replaceSubrange((fid + 20)..<(fid + 36), with: rootICB)
        Self.resealTag(&loop, at: fid)
        #expect(try await refusal(loop)?.contains("loops back") == true)

        // Absurd lengths: a file of 2^62 bytes; allocation descriptors longer than a block.
        var huge = original
        let file = try #require(Self.descriptorSectors(original, tag: 261).last) * 2048
        huge.replaceSubrange((file + 56)..<(file + 64), with: Self.littleEndian(UInt64(1) << 62, 8))
        Self.resealTag(&huge, at: file)
        #expect(try await refusal(huge) != nil)
        var longList = original
        longList.replaceSubrange((file + 172)..<(file + 176), with: Self.littleEndian(5000, 4))
        Self.resealTag(&longList, at: file)
        #expect(try await refusal(longList)?.contains("overflow") == true)
    }

    /// Random damage to the image's descriptors, half of them with their tags resealed so that the deeper
    /// checks are reached: every case either parses (and its files read or fail with an error) or throws.
    @Test(.timeLimit(.minutes(3))) func randomCorruptionNeverCrashesOrHangs() async throws {
        let dir = try TemporaryDirectory()
        _ = try makeSource(dir)
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: makeImage(dir, hidden: ["secret.bin"]))))
        let metadata = Array(16..<24) + Array(256..<320)
        var random = SeededRandom(seed: 20_261_205)
        var parsed = 0, refused = 0
        for round in 0..<400 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let sector = Int.random(in: 0..<8, using: &random) > 0 ? metadata.randomElement(using: &random)! : Int.random(in: 0..<(bytes.count / 2048), using: &random)
                bytes[sector * 2048 + Int.random(in: 0..<2048, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            if round % 2 == 0 {
                for sector in metadata where bytes[sector * 2048 + 1] <= 1 && bytes[sector * 2048] != 0 { Self.resealTag(&bytes, at: sector * 2048) }
            }
            if round % 10 == 0 { bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random))) }
            let path = dir.file("fuzz.iso")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let image = try await UDFImage.open(RawPath(path))
                parsed += 1
                try await image.read(configuration: .init(chunkSize: 256 * 1024)) { entry, chunks in
                    var total: Int64 = 0
                    do {
                        for try await chunk in chunks { total += Int64(chunk.readableBytes) }
                        #expect(total == entry.size)
                    } catch is IngestError {}
                }
            } catch let error as IngestError {
                refused += 1
                #expect(error.code == .unreadableUDF || error.code == .readFailed, "\(error)")
            }
        }
        #expect(parsed > 0 && refused > 0, "parsed \(parsed), refused \(refused)")
    }

    @Test func viewsAreComparedByPathAndSize() {
        func udf(_ path: String, _ size: Int64) -> UDFFile {
            UDFFile(path: RawPath(path), kind: .file, size: size, modificationTime: nil, mode: 0o100444, entry: UInt64(size), pieces: [])
        }
        func iso(_ path: String, _ size: Int64, _ type: ISOEntryType = .file) -> (RawPath, ISOEntry) {
            (RawPath(path), ISOEntry(path: RawPath(path), size: size, modificationTime: nil, type: type, mode: 0o100444, warning: nil))
        }
        let big: Int64 = 4_402_341_478
        let isoView = Dictionary(uniqueKeysWithValues: [
            iso("same.txt", 5), iso("link.txt", 0, .hardlink(target: "same.txt")), iso("huge.bin", big % (1 << 32)), iso("ONLYISO.TXT", 3),
            iso("UPPER.TXT", 7),
        ])
        let gaps = ImageView.isoViewGaps(
            udf: [udf("same.txt", 5), udf("link.txt", 5), udf("huge.bin", big), udf("hidden.bin", 9), udf("upper.txt", 7)], iso: isoView)
        #expect(gaps.missing == [
            "huge.bin has \(big) bytes in UDF, \(big % (1 << 32)) in ISO 9660", "hidden.bin is only in UDF", "upper.txt is only in UDF",
        ], "a hard link counts with its target's size; names must match exactly to read through ISO 9660")
        #expect(gaps.onlyInISO == ["ONLYISO.TXT"], "plain ISO 9660's upper-case names match UDF's ignoring case")
    }

    @Test func namesAndChecksumsFollowTheStandard() {
        #expect(UDFParser.crc([0x70, 0x6A, 0x77][...]) == 0x3299, "ECMA-167 1/7.2.6's example")
        #expect(UDFParser.decodeCS0([8, 0x61, 0xE9][...]) == "aé")
        #expect(UDFParser.decodeCS0([16, 0x00, 0x61, 0xD8, 0x3D, 0xDE, 0x00][...]) == "a😀")
        #expect(UDFParser.decodeCS0([16, 0xD8, 0x3D][...]) == nil, "an unpaired surrogate")
        #expect(UDFParser.decodeCS0([16, 0x00][...]) == nil, "an odd length")
        #expect(UDFParser.decodeCS0([254, 0x61][...]) == nil)
        #expect(UDFParser.posixPermissions(0x14A5) == 0o555)
    }

    // MARK: - Finding and resealing descriptors in an image

    /// Sectors that start with a valid tag of this identifier.
    static func descriptorSectors(_ bytes: [UInt8], tag: UInt16) -> [Int] {
        (0..<(bytes.count / 2048)).filter { sector in
            let base = sector * 2048
            guard UInt16(bytes[base]) | UInt16(bytes[base + 1]) << 8 == tag else { return false }
            var sum: UInt8 = 0
            for index in 0..<16 where index != 4 { sum &+= bytes[base + index] }
            return sum == bytes[base + 4]
        }
    }

    /// The sector and byte offset of the File Identifier Descriptor with this 8-bit CS0 name ("" for a parent
    /// entry), searched in `sector` or in every directory block.
    static func fileIdentifier(_ bytes: [UInt8], named name: String, in sector: Int? = nil) -> (sector: Int, offset: Int)? {
        for candidate in sector.map({ [$0] }) ?? descriptorSectors(bytes, tag: 257) {
            var offset = candidate * 2048
            while offset + 38 <= (candidate + 1) * 2048, UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 == 257 {
                let nameLength = Int(bytes[offset + 19]), useLength = Int(bytes[offset + 36]) | Int(bytes[offset + 37]) << 8
                let nameBytes = bytes[(offset + 38 + useLength)..<(offset + 38 + useLength + nameLength)]
                if name.isEmpty ? nameLength == 0 : Array(nameBytes) == [8] + Array(name.utf8) { return (candidate, offset) }
                offset += (38 + useLength + nameLength + 3) / 4 * 4
            }
        }
        return nil
    }

    /// The ICB (long_ad) of the parent entry in the directory block that holds the FID at `entry`.
    static func parentICB(_ bytes: [UInt8], ofDirectoryHolding entry: (sector: Int, offset: Int)) -> [UInt8]? {
        guard let parent = fileIdentifier(bytes, named: "", in: entry.sector) else { return nil }
        return Array(bytes[(parent.offset + 20)..<(parent.offset + 36)])
    }

    /// Recomputes a descriptor's CRC and tag checksum after it was edited.
    static func resealTag(_ bytes: inout [UInt8], at base: Int) {
        let crcLength = Int(bytes[base + 10]) | Int(bytes[base + 11]) << 8
        if base + 16 + crcLength <= bytes.count {
            let crc = UDFParser.crc(bytes[(base + 16)..<(base + 16 + crcLength)])
            bytes[base + 8] = UInt8(crc & 0xFF)
            bytes[base + 9] = UInt8(crc >> 8)
        }
        var sum: UInt8 = 0
        for index in 0..<16 where index != 4 { sum &+= bytes[base + index] }
        bytes[base + 4] = sum
    }

    static func littleEndian(_ value: UInt64, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}

/// A reproducible generator (xorshift), so a failing corruption can be replayed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
}
