import Foundation
import NIOCore
import Synchronization
import Testing
@testable import SourceReading

/// Wraps a device and fails reads that touch chosen sectors: `failures[sector]` is how many read attempts touching
/// it fail (a block read counts as an attempt for every sector in it); `Int.max` fails forever.
final class FailingDevice: SectorDevice {
    let base: any SectorDevice
    let failures: Mutex<[Int64: Int]>
    let attempts = Mutex<[Int64: Int]>([:])

    init(_ base: any SectorDevice, failures: [Int64: Int]) {
        self.base = base
        self.failures = Mutex(failures)
    }

    var name: String { base.name }
    var sectorSize: Int { base.sectorSize }
    var byteCount: Int64 { base.byteCount }

    func readSectors(_ first: Int64, count: Int) throws -> ByteBuffer {
        let range = first..<(first + Int64(count))
        let fail = failures.withLock { failures -> Bool in
            var fail = false
            for sector in range {
                attempts.withLock { $0[sector, default: 0] += 1 }
                if let left = failures[sector], left > 0 {
                    fail = true
                    failures[sector] = left == Int.max ? left : left - 1
                }
            }
            return fail
        }
        if fail { throw IngestError.system(.readFailed, path: name, errno: EIO, "read failed at sector \(first)") }
        return try base.readSectors(first, count: count)
    }
}

@Suite struct DiscImagerTests {
    static let sector = 2048

    /// A generated "disc" file: 1000 whole sectors and a short last one.
    func makeDisc(_ dir: TemporaryDirectory, bytes: Int = 1000 * 2048 + 100) throws -> (path: String, bytes: [UInt8]) {
        let content = pseudoRandomBytes(bytes, seed: 42)
        return (try dir.write("disc.img", content), content)
    }

    func image(_ device: any SectorDevice, _ configuration: DiscImagerConfiguration) async throws -> ([UInt8], DiscImageResult, Int) {
        var out: [UInt8] = []
        var largest = 0
        let result = try await DiscImager(device: device, configuration: configuration).image { chunk in
            largest = max(largest, chunk.readableBytes)
            out.append(contentsOf: chunk.readableBytesView)
        }
        return (out, result, largest)
    }

    @Test func cleanImageOfAGeneratedFile() async throws {
        let dir = try TemporaryDirectory()
        let disc = try makeDisc(dir)
        let device = try await FileSectorDevice.open(RawPath(disc.path))
        #expect(device.sectorCount == 1001)
        let (out, result, largest) = try await image(device, .init(blockSectors: 64))
        #expect(out.count == disc.bytes.count && out == disc.bytes, "image bytes differ from the disc")
        #expect(result.byteCount == Int64(disc.bytes.count))
        #expect(result.sha256 == SHA256Stream.hash(disc.bytes))
        #expect(result.isClean)
        #expect(result.badBytes == 0)
        #expect(largest <= 64 * Self.sector, "memory is bounded by one block")
        #expect(result.map.blocks == [RescueMap.Block(position: 0, size: Int64(disc.bytes.count), status: .finished)])
        #expect(result.summary.contains("clean image"))
        #expect(result.mapfile.contains("0x00000000  0x001F4064  +"))
    }

    @Test func permanentlyBadSectorsAreZerosAndMapped() async throws {
        let dir = try TemporaryDirectory()
        let disc = try makeDisc(dir)
        let base = try await FileSectorDevice.open(RawPath(disc.path))
        let bad: [Int64] = [5, 6, 7, 130, 1000]  // 1000 is the short last sector (100 bytes)
        let device = FailingDevice(base, failures: Dictionary(uniqueKeysWithValues: bad.map { ($0, Int.max) }))
        let (out, result, _) = try await image(device, .init(blockSectors: 64, retryPasses: 2, retryDelay: .zero))

        #expect(out.count == disc.bytes.count, "offsets stay right: the image has the device's full size")
        var expected = disc.bytes
        for sector in bad {
            let start = Int(sector) * Self.sector
            let end = min(start + Self.sector, expected.count)
            expected.replaceSubrange(start..<end, with: [UInt8](repeating: 0, count: end - start))
        }
        #expect(out.count == expected.count && out == expected, "image bytes differ from the expected zero-filled copy")
        #expect(!result.isClean)
        #expect(result.badBytes == 4 * 2048 + 100)
        #expect(result.summary.contains("DEGRADED"))
        #expect(result.map.badBlocks == [
            RescueMap.Block(position: 5 * 2048, size: 3 * 2048, status: .badSector),
            RescueMap.Block(position: 130 * 2048, size: 2048, status: .badSector),
            RescueMap.Block(position: 1000 * 2048, size: 100, status: .badSector),
        ])
        // Each bad sector: one block read, one split read, two retry passes.
        #expect(device.attempts.withLock { $0[130] } == 4)
        // The mapfile is ddrescue's format and reads back to the same map.
        let mapfile = result.mapfile
        #expect(mapfile.contains("0x00002800  0x00001800  -"))
        #expect(try RescueMap.parse(mapfile) == result.map)
        #expect(result.map.blocks.reduce(0) { $0 + $1.size } == Int64(disc.bytes.count))
    }

    @Test func sectorsThatFailOnlyAtFirstAreRecoveredByRetryPasses() async throws {
        let dir = try TemporaryDirectory()
        let disc = try makeDisc(dir)
        let base = try await FileSectorDevice.open(RawPath(disc.path))
        // 3 failures: the block read, the split read and the first retry pass fail; the second retry succeeds.
        let device = FailingDevice(base, failures: [10: 3, 11: 2, 500: 3])
        let (out, result, _) = try await image(device, .init(blockSectors: 32, retryPasses: 3, retryDelay: .zero))
        #expect(out.count == disc.bytes.count && out == disc.bytes, "image bytes differ from the disc")
        #expect(result.isClean)
        #expect(result.recoveredSectors == 3)
        #expect(result.sha256 == SHA256Stream.hash(disc.bytes))
        #expect(result.summary.contains("3 sectors needed retries"))
    }

    @Test func withoutRetryPassesAFlakySectorStaysBad() async throws {
        let dir = try TemporaryDirectory()
        let disc = try makeDisc(dir, bytes: 100 * 2048)
        let base = try await FileSectorDevice.open(RawPath(disc.path))
        let device = FailingDevice(base, failures: [20: 2])
        let (_, result, _) = try await image(device, .init(blockSectors: 16, retryPasses: 0))
        #expect(!result.isClean)
        #expect(result.badBytes == 2048)
    }

    @Test func streamAPIDeliversTheSameBytesAndTheResultAfterwards() async throws {
        let dir = try TemporaryDirectory()
        let disc = try makeDisc(dir, bytes: 300 * 2048)
        let base = try await FileSectorDevice.open(RawPath(disc.path))
        let stream = try DiscImager(device: FailingDevice(base, failures: [7: Int.max]), configuration: .init(retryDelay: .zero)).stream()
        #expect(stream.result == nil)
        var hash = SHA256Stream()
        for try await chunk in stream { hash.update(chunk) }
        let result = try #require(stream.result)
        #expect(hash.byteCount == 300 * 2048)
        #expect(result.sha256 == hash.finalize())
        #expect(result.badBytes == 2048)
    }

    @Test func mapfileParserRejectsGarbage() {
        #expect(throws: IngestError.self) { try RescueMap.parse("0x0 + 1\n0x10 zz +\n") }
    }
}
