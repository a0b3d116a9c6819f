#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import Synchronization
import SystemIO

/// Something read in sectors: an optical drive, a disk, an image file. ``FileSectorDevice`` is the real one;
/// tests wrap it to fail chosen sectors.
public protocol SectorDevice: Sendable {
    /// For messages ("/dev/sr0").
    var name: String { get }
    var sectorSize: Int { get }
    /// Total bytes; the last sector is short when this is not a multiple of ``sectorSize``.
    var byteCount: Int64 { get }
    /// Reads `count` sectors from sector `first` (blocking; called on the thread pool). Returns exactly those
    /// bytes, or throws if any of them could not be read.
    func readSectors(_ first: Int64, count: Int) throws -> ByteBuffer
}

extension SectorDevice {
    public var sectorCount: Int64 { (byteCount + Int64(sectorSize) - 1) / Int64(sectorSize) }
}

/// A block device or file read with `pread` (the page cache is used; O_DIRECT is not needed for correctness).
public final class FileSectorDevice: SectorDevice {
    public let name: String
    public let sectorSize: Int
    public let byteCount: Int64
    private let file: DescriptorFile

    /// Opens `path` (on the thread pool) and finds its size with `lseek(SEEK_END)`, which works for block devices.
    public static func open(_ path: RawPath, sectorSize: Int = 2048) async throws -> FileSectorDevice {
        guard sectorSize > 0, sectorSize % 512 == 0 else {
            throw IngestError(.invalidArgument, path: path.string, "the sector size must be a multiple of 512")
        }
        return try await blocking {
            let file = try DescriptorFile(opening: path)
            do {
                return FileSectorDevice(name: path.string, sectorSize: sectorSize, byteCount: try file.currentSize(), file: file)
            } catch {
                file.close()
                throw error
            }
        }
    }

    private init(name: String, sectorSize: Int, byteCount: Int64, file: DescriptorFile) {
        self.name = name
        self.sectorSize = sectorSize
        self.byteCount = byteCount
        self.file = file
    }

    deinit { file.close() }

    public func readSectors(_ first: Int64, count: Int) throws -> ByteBuffer {
        let offset = first * Int64(sectorSize)
        let length = Int(min(Int64(count * sectorSize), byteCount - offset))
        guard length > 0 else { return ByteBuffer() }
        // An image file's unused sectors are often a hole: zeros without a read.
        if file.isHole(offset: offset, count: length) { return SparseRead.zeros(length) }
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        var total = 0
        while total < length {
            let got = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length - total) { pointer in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: pointer[0..<(length - total)]), at: offset + Int64(total))
            }
            guard got > 0 else {
                throw IngestError(.readFailed, path: name, "the device ended at byte \(offset + Int64(total)), before its size of \(byteCount)")
            }
            total += got
        }
        return buffer
    }
}

public struct DiscImagerConfiguration: Sendable, Hashable {
    /// Sectors per read in the first pass (64 × 2048 = 128 KiB, about what drives read ahead anyway).
    public var blockSectors: Int
    /// Passes over the sectors of a failed block that still fail, after the sector-by-sector split.
    public var retryPasses: Int
    /// Pause before each retry pass (a drive may need to spin up again or recalibrate).
    public var retryDelay: Duration

    public init(blockSectors: Int = 64, retryPasses: Int = 3, retryDelay: Duration = .milliseconds(100)) {
        self.blockSectors = blockSectors
        self.retryPasses = retryPasses
        self.retryDelay = retryDelay
    }
}

/// A ddrescue-style map: byte ranges with a status, `+` read, `-` could not be read (zeros in the image).
public struct RescueMap: Sendable, Hashable {
    public enum Status: Character, Sendable, Hashable {
        case finished = "+"
        case badSector = "-"
    }

    public struct Block: Sendable, Hashable {
        public var position: Int64
        public var size: Int64
        public var status: Status
    }

    public private(set) var blocks: [Block] = []

    public init() {}

    /// Adds a range after the last one, merged with it when the status is the same.
    mutating func append(position: Int64, size: Int64, status: Status) {
        guard size > 0 else { return }
        if var last = blocks.last, last.status == status, last.position + last.size == position {
            last.size += size
            blocks[blocks.count - 1] = last
        } else {
            blocks.append(Block(position: position, size: size, status: status))
        }
    }

    public var badBlocks: [Block] { blocks.filter { $0.status == .badSector } }
    public var badBytes: Int64 { badBlocks.reduce(0) { $0 + $1.size } }

    /// The map in GNU ddrescue's mapfile format, so `ddrescue` and `ddrescueview` can read it (and a later
    /// `ddrescue -n` run with the device can try the bad areas again).
    public func mapfile(device: String, finished: Bool) -> String {
        func hex(_ value: Int64) -> String {
            let digits = String(value, radix: 16, uppercase: true)
            return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
        }
        var lines = [
            "# Mapfile. Created by personal-backup uploader image",
            "# Device: \(String(device.map { $0.isNewline ? "?" : $0 }))",
            "# current_pos  current_status  current_pass",
            "\(hex(blocks.last.map { $0.position + $0.size } ?? 0))     \(finished ? "+" : "?")               1",
            "#      pos        size  status",
        ]
        for block in blocks {
            lines.append("\(hex(block.position))  \(hex(block.size))  \(block.status.rawValue)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parses the block lines of a ddrescue mapfile (comments and the status line are skipped).
    public static func parse(_ text: String) throws -> RescueMap {
        var map = RescueMap()
        var sawStatusLine = false
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let fields = line.split(whereSeparator: \.isWhitespace)
            if !sawStatusLine { sawStatusLine = true; continue }
            guard fields.count >= 3,
                  let position = Int64(fields[0].dropFirst(2), radix: 16), fields[0].hasPrefix("0x"),
                  let size = Int64(fields[1].dropFirst(2), radix: 16), fields[1].hasPrefix("0x"),
                  let status = fields[2].first.flatMap(Status.init(rawValue:))
            else { throw IngestError(.invalidArgument, path: "mapfile", "malformed line: \(line.prefix(80))") }
            map.blocks.append(Block(position: position, size: size, status: status))
        }
        return map
    }
}

/// The outcome of imaging a device.
public struct DiscImageResult: Sendable, Hashable {
    public let device: String
    /// Bytes in the image (always the device's full size: unreadable sectors are zeros).
    public let byteCount: Int64
    public let sha256: String
    public let map: RescueMap
    /// Sectors that failed at first and were read in a retry pass.
    public let recoveredSectors: Int64
    public var badBytes: Int64 { map.badBytes }
    /// True only when every sector was read. A degraded image must be recorded and reported as degraded.
    public var isClean: Bool { badBytes == 0 }
    public var mapfile: String { map.mapfile(device: device, finished: true) }

    /// One line for logs and summaries.
    public var summary: String {
        isClean
            ? "\(device): clean image, \(byteCount) bytes"
                + (recoveredSectors > 0 ? " (\(recoveredSectors) sectors needed retries)" : "")
            : "\(device): DEGRADED image, \(badBytes) of \(byteCount) bytes unreadable (written as zeros) in \(map.badBlocks.count) areas"
    }
}

/// Images a disc or drive sector by sector, like GNU ddrescue, as one in-order stream of bytes.
///
/// Reads go in blocks of ``DiscImagerConfiguration/blockSectors``. When a block fails, it is split and read
/// sector by sector; the sectors that still fail get ``DiscImagerConfiguration/retryPasses`` further passes;
/// the ones that never succeed are written as zeros (so every later offset stays right) and recorded as bad in
/// the ``RescueMap``. Then the imager moves past the area and goes on in large blocks.
///
/// Ordering: ddrescue leaves bad areas for later passes over the whole device. Here the output is a sequential
/// stream straight into a hash and a multipart upload, with memory bounded by one block, so the retry passes
/// over a block happen before the imager moves on, and a block is only emitted once its content is final. The
/// cost: on a disc with large damaged areas, every bad sector is tried 1 + retryPasses times before the rest is
/// read, where ddrescue would first save the good areas. The map is in ddrescue's format, so a second attempt
/// with ddrescue itself on the same disc can start from it.
public struct DiscImager: Sendable {
    public let device: any SectorDevice
    public let configuration: DiscImagerConfiguration

    public init(device: any SectorDevice, configuration: DiscImagerConfiguration = .init()) {
        self.device = device
        self.configuration = configuration
    }

    /// Streams the image, in order, through `consumer` (which may be slow: the reading waits for it) and returns
    /// the result. At most one block is in memory at a time.
    public func image(into consumer: (ByteBuffer) async throws -> Void) async throws -> DiscImageResult {
        let cursor = try ImagingCursor(device: device, configuration: configuration)
        while let chunk = try await cursor.next() {
            try await consumer(chunk)
        }
        return cursor.result()
    }

    /// The image as an async sequence of chunks (for `ObjectSource.stream(_, length: device.byteCount)`); after it
    /// ended, ``DiscImageStream/result`` holds the outcome. Iterate it once.
    public func stream() throws -> DiscImageStream {
        DiscImageStream(cursor: try ImagingCursor(device: device, configuration: configuration))
    }
}

public struct DiscImageStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    fileprivate let cursor: ImagingCursor

    /// The outcome, once the sequence has been iterated to its end; nil before.
    public var result: DiscImageResult? { cursor.isFinished ? cursor.result() : nil }

    public struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate let cursor: ImagingCursor
        public mutating func next() async throws -> ByteBuffer? { try await cursor.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(cursor: cursor) }
}

/// The imaging position and what has been learnt so far. Driven by one consumer at a time; the state sits in a
/// Mutex only so that `result` may be looked at from elsewhere.
private final class ImagingCursor: Sendable {
    struct State {
        var nextSector: Int64 = 0
        var map = RescueMap()
        var hash = SHA256Stream()
        var recovered: Int64 = 0
        var finished = false
    }

    let device: any SectorDevice
    let configuration: DiscImagerConfiguration
    let state = Mutex(State())

    init(device: any SectorDevice, configuration: DiscImagerConfiguration) throws {
        guard configuration.blockSectors > 0, configuration.retryPasses >= 0 else {
            throw IngestError(.invalidArgument, path: device.name, "blockSectors must be positive and retryPasses not negative")
        }
        self.device = device
        self.configuration = configuration
    }

    var isFinished: Bool { state.withLock { $0.finished } }

    func result() -> DiscImageResult {
        state.withLock {
            DiscImageResult(device: device.name, byteCount: device.byteCount, sha256: $0.hash.finalize(), map: $0.map, recoveredSectors: $0.recovered)
        }
    }

    func next() async throws -> ByteBuffer? {
        try Task.checkCancellation()
        let first = state.withLock { $0.nextSector }
        let total = device.sectorCount
        guard first < total else {
            state.withLock { $0.finished = true }
            return nil
        }
        let count = Int(min(Int64(configuration.blockSectors), total - first))
        let device = self.device
        let sectorSize = Int64(device.sectorSize)
        let blockStart = first * sectorSize
        let blockLength = min(Int64(count) * sectorSize, device.byteCount - blockStart)

        if let block = try? await blocking({ try device.readSectors(first, count: count) }), Int64(block.readableBytes) == blockLength {
            record(block, first: first, count: count, map: [(blockStart, blockLength, .finished)], recovered: 0)
            return block
        }

        // Split: one sector at a time, then retry passes over the ones that failed.
        var sectors = [ByteBuffer?](repeating: nil, count: count)
        for index in 0..<count {
            sectors[index] = try await readOne(first + Int64(index))
        }
        var recovered: Int64 = 0
        for _ in 0..<configuration.retryPasses where sectors.contains(where: { $0 == nil }) {
            try await Task.sleep(for: configuration.retryDelay)
            for index in 0..<count where sectors[index] == nil {
                if let data = try await readOne(first + Int64(index)) {
                    sectors[index] = data
                    recovered += 1
                }
            }
        }

        var block = ByteBufferAllocator().buffer(capacity: Int(blockLength))
        var ranges: [(Int64, Int64, RescueMap.Status)] = []
        for index in 0..<count {
            let position = blockStart + Int64(index) * sectorSize
            let length = min(sectorSize, device.byteCount - position)
            if var data = sectors[index] {
                block.writeBuffer(&data)
                ranges.append((position, length, .finished))
            } else {
                block.writeRepeatingByte(0, count: Int(length))
                ranges.append((position, length, .badSector))
            }
        }
        record(block, first: first, count: count, map: ranges, recovered: recovered)
        return block
    }

    /// One sector, or nil if it cannot be read (a cancelled task still throws).
    private func readOne(_ sector: Int64) async throws -> ByteBuffer? {
        try Task.checkCancellation()
        let device = self.device
        let expected = min(Int64(device.sectorSize), device.byteCount - sector * Int64(device.sectorSize))
        guard let data = try? await blocking({ try device.readSectors(sector, count: 1) }), Int64(data.readableBytes) == expected else {
            return nil
        }
        return data
    }

    private func record(_ block: ByteBuffer, first: Int64, count: Int, map ranges: [(Int64, Int64, RescueMap.Status)], recovered: Int64) {
        state.withLock { state in
            state.hash.update(block)
            for (position, size, status) in ranges { state.map.append(position: position, size: size, status: status) }
            state.recovered += recovered
            state.nextSector = first + Int64(count)
        }
    }
}
