import Foundation
import NIOCore
import SystemIO
import Testing

@Suite("sparse writes: zeros left as holes")
struct SparseWriteTests {
    /// A small deterministic generator (the seed is in the failure message); the XML reader tests use it too.
    struct Mix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("isAllZero: true for empty and all-zero buffers, false for one non-zero byte anywhere")
    func zeroCheck() {
        let size = 70_001
        var bytes = [UInt8](repeating: 0, count: size)
        #expect(bytes.withUnsafeBytes(SparseWrite.isAllZero))
        #expect([UInt8]().withUnsafeBytes(SparseWrite.isAllZero))
        for position in [0, 1, 4095, 35_000, size - 1] {
            bytes[position] = 1
            #expect(!bytes.withUnsafeBytes(SparseWrite.isAllZero), "byte \(position)")
            bytes[position] = 0
        }
    }

    /// Random buffers made of zero and non-zero runs of random lengths (some a whole aligned stretch or more),
    /// written at random offsets: what is handed on, laid over zeros, must give the buffer back; everything
    /// skipped must be an aligned all-zero stretch; and every aligned all-zero stretch inside must be skipped.
    @Test("what is skipped is exactly the aligned all-zero stretches, and the rest rebuilds the buffer", arguments: 0..<4)
    func randomBuffers(seed: UInt64) {
        var random = Mix(state: seed)
        let granularity = SparseWrite.holeGranularity
        for round in 0..<200 {
            var bytes: [UInt8] = []
            let target = Int.random(in: 0...(6 * granularity), using: &random)
            while bytes.count < target {
                let length = Bool.random(using: &random) ? Int.random(in: 1...300, using: &random) : Int.random(in: 1...(3 * granularity), using: &random)
                if Bool.random(using: &random) {
                    bytes += [UInt8](repeating: 0, count: length)
                } else {
                    bytes += Self.randomBytes(length, using: &random)
                }
            }
            let offset = Int64(Int.random(in: 0...(4 * granularity), using: &random))
            var file = [UInt8](repeating: 0, count: Int(offset) + bytes.count)
            var handed: [Range<Int>] = []
            let written = bytes.withUnsafeBytes { raw in
                SparseWrite.writeSkippingZeros(raw, at: offset) { stretch, at in
                    let start = Int(at)
                    file.replaceSubrange(start..<(start + stretch.count), with: stretch)
                    handed.append(start..<(start + stretch.count))
                }
            }
            let context = "seed \(seed) round \(round): \(bytes.count) bytes at \(offset)"
            #expect(file[Int(offset)...].elementsEqual(bytes), "\(context)")
            #expect(written == handed.reduce(0) { $0 + $1.count }, "\(context)")
            #expect(zip(handed, handed.dropFirst()).allSatisfy { $0.upperBound < $1.lowerBound }, "in order, adjacent ones joined: \(context)")
            // Walk the aligned stretches of the file's region: skipped if and only if whole and all zero.
            var position = Int(offset)
            let end = Int(offset) + bytes.count
            while position < end {
                let stretchEnd = min(end, (position / granularity + 1) * granularity)
                let whole = stretchEnd - position == granularity
                let zero = Self.allZero(file, position..<stretchEnd)
                let skipped = !handed.contains { $0.overlaps(position..<stretchEnd) }
                #expect(skipped == (whole && zero), "stretch at \(position): \(context)")
                position = stretchEnd
            }
        }
    }

    /// `count` random bytes, a zero among them now and then (one in 256), eight from each draw: made byte by byte,
    /// this test's four seeds spent seconds of a debug build's CPU on the shared test pool.
    static func randomBytes(_ count: Int, using random: inout Mix) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            var index = 0
            while index < count {
                var word = random.next()
                for _ in 0..<min(8, count - index) {
                    raw[index] = UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    index += 1
                }
            }
        }
        return bytes
    }

    /// Whether `range` of `bytes` is all zero, eight bytes at a time (independent of `SparseWrite.isAllZero`).
    static func allZero(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        bytes.withUnsafeBytes { raw in
            var index = range.lowerBound
            while index + 8 <= range.upperBound {
                if raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) != 0 { return false }
                index += 8
            }
            while index < range.upperBound {
                if raw[index] != 0 { return false }
                index += 1
            }
            return true
        }
    }

    @Test("a real file written this way reads back the same and occupies only its data")
    func realFile() throws {
        let path = NSTemporaryDirectory() + "sparse-\(UUID().uuidString)"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0)
        defer { close(fd); unlink(path) }
        var bytes = [UInt8](repeating: 0, count: 16 << 20)
        for index in 0..<100_000 { bytes[index] = UInt8(truncatingIfNeeded: index &* 7 | 1) }
        bytes[9_000_000] = 42
        try bytes.withUnsafeBytes { raw in
            try SparseWrite.writeSkippingZeros(raw, at: 0) { stretch, at in try POSIXFile.writeAll(fd: fd, stretch, at: at) }
        }
        #expect(ftruncate(fd, off_t(bytes.count)) == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))
        var info = stat()
        #expect(fstat(fd, &info) == 0)
        #expect(Int64(info.st_blocks) * 512 < 1 << 20, "\(info.st_blocks) blocks for 100 KiB and one byte")

        // Reading it back: the holes are found, and what they answer is what a read gives.
        #expect(SparseRead.isHole(fd: fd, offset: 1 << 20, count: 4 << 20))
        #expect(SparseRead.isHole(fd: fd, offset: 10 << 20, count: 6 << 20), "the hole at the end")
        #expect(!SparseRead.isHole(fd: fd, offset: 8 << 20, count: 2 << 20), "byte 9,000,000 is data")
        #expect(!SparseRead.isHole(fd: fd, offset: 0, count: 1 << 20), "the data at the start")
        #expect(!SparseRead.isHole(fd: fd, offset: 15 << 20, count: 2 << 20), "past the end is not a hole")
        #expect(!SparseRead.isHole(fd: fd, offset: 16 << 20, count: 1 << 20), "past the end is not a hole")
        var offset = 0
        while offset < bytes.count {
            let chunk = try POSIXFile.read(fd: fd, offset: Int64(offset), count: 1 << 20)
            #expect(chunk.readableBytes == 1 << 20)
            #expect(Array(chunk.readableBytesView) == Array(bytes[offset..<(offset + (1 << 20))]), "at \(offset)")
            offset += 1 << 20
        }
        #expect(try POSIXFile.read(fd: fd, offset: Int64(bytes.count), count: 1 << 20).readableBytes == 0, "nothing past the end")
    }

    @Test("the shared zeros are zeros, and a writer of one copy does not change the next")
    func sharedZeros() {
        var first = SparseRead.zeros(1 << 20)
        first.setInteger(UInt8(7), at: 100)
        let second = SparseRead.zeros(1 << 20)
        #expect(second.readableBytesView.allSatisfy { $0 == 0 })
        #expect(SparseRead.zeros(5 << 20).readableBytes == 5 << 20)
    }
}
