#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// One entry of a UDF file system: where it is, what it is, and where its bytes lie in the image.
public struct UDFFile: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case file
        case directory
        case symlink(target: RawPath)
        /// Device nodes, FIFOs, sockets: no content to keep.
        case other(mode: UInt32)
    }

    /// `/`-separated path from the root, UTF-8 (OSTA CS0 names converted), no leading or trailing `/`.
    public let path: RawPath
    public let kind: Kind
    /// The file's information length (0 for everything but files).
    public let size: Int64
    public let modificationTime: Date?
    /// POSIX permission and type bits made from the ECMA-167 permissions and file type.
    public let mode: UInt32
    /// The File Entry's partition reference and block: two names with the same entry are hard links.
    public let entry: UInt64
    /// The content, in order (files only; empty otherwise).
    let pieces: [UDFPiece]

    /// The byte offset in the image of the first recorded byte, for reading in disc order (nil: none recorded).
    var firstImageOffset: Int64? {
        for piece in pieces { if case .recorded(let offset, _) = piece { return offset } }
        return nil
    }
}

/// A run of a file's content.
enum UDFPiece: Sendable, Hashable {
    /// `length` bytes at byte `offset` of the image.
    case recorded(offset: Int64, length: Int64)
    /// An extent allocated but not recorded, or not allocated: reads as zeros (ECMA-167 4/14.14.1.1).
    case zeros(length: Int64)
    /// Data embedded in the File Entry itself (ICB flag 3).
    case embedded([UInt8])

    var length: Int64 {
        switch self {
        case .recorded(_, let length), .zeros(let length): length
        case .embedded(let bytes): Int64(bytes.count)
        }
    }
}

/// A UDF file system as listed from an image.
public struct UDFVolume: Sendable {
    /// The OSTA UDF revision from the logical volume's domain identifier (0x0102 for 1.02, 0x0260 for 2.60).
    public let revision: UInt16
    /// Every entry except the root: directories in the order they were visited, then the rest.
    public let files: [UDFFile]

    public var revisionText: String { String(format: "%d.%02x", revision >> 8, revision & 0xFF) }
}

/// A small, bounds-checked reader of the UDF structures (ECMA-167 3rd edition with OSTA UDF 1.02–2.60) that
/// DVD burners, DVD-Video authoring, `genisoimage -udf` and `mkisofs -udf` write: one type-1 partition, 2048-byte
/// blocks, File Entries and Extended File Entries with short or long allocation descriptors or embedded data.
///
/// Anything else (metadata partitions of UDF 2.50+ Blu-ray, virtual (VAT) and sparable partitions, extended
/// allocation descriptors, strategy 4096, other block sizes) and every inconsistency (bad tag checksum or CRC,
/// a descriptor at the wrong place, an extent outside its partition, a directory loop, absurd lengths) is refused
/// with an ``IngestError`` of code ``IngestError/Code/unreadableUDF``: the caller then keeps the image whole
/// rather than trust a partial listing. Every loop is bounded by the image's size or a fixed limit, so corrupt
/// input either parses or throws; it never crashes or hangs.
///
/// Blocking (pread): call it on the thread pool (``UDFImage`` does).
struct UDFParser {
    static let blockSize = 2048
    /// Limits that no real disc comes near; they turn a corrupt length into an error instead of a huge allocation.
    static let maximumEntries = 2_000_000
    static let maximumDirectoryBytes: Int64 = 64 << 20
    static let maximumExtentsPerFile = 1_000_000
    static let maximumAllocationExtentBlocks = 65_536
    static let maximumSymlinkBytes: Int64 = 64 << 10

    let path: String
    let imageSize: Int64
    /// Reads exactly `count` bytes at `offset` or throws.
    let readAt: (Int64, Int) throws -> [UInt8]

    struct Partition {
        let start: Int64  // first sector of the partition
        let length: Int64  // in blocks
    }

    var partitions: [Partition] = []  // indexed by partition reference number

    init(path: String, imageSize: Int64, readAt: @escaping (Int64, Int) throws -> [UInt8]) {
        self.path = path
        self.imageSize = imageSize
        self.readAt = readAt
    }

    func refuse(_ message: String) -> IngestError {
        IngestError(.unreadableUDF, path: path, "UDF: \(message)")
    }

    // MARK: - Volume Recognition Sequence

    /// True when the Volume Recognition Sequence (sectors 16 and on: BEA01, NSR02/NSR03, TEA01) announces UDF.
    static func hasUDF(imageSize: Int64, readAt: (Int64, Int) throws -> [UInt8]) throws -> Bool {
        var inExtendedArea = false
        for index in 0..<64 {
            let offset = Int64(16 + index) * Int64(blockSize)
            guard offset + 7 <= imageSize else { return false }
            let bytes = try readAt(offset, 7)
            let identifier = String(decoding: bytes[1..<6], as: UTF8.self)
            switch identifier {
            case "BEA01": inExtendedArea = true
            case "NSR02", "NSR03": if inExtendedArea { return true }
            case "TEA01": inExtendedArea = false
            case "CD001", "CDW02", "BOOT2": continue
            default: return false  // an unrecorded sector or unknown identifier ends the sequence
            }
        }
        return false
    }

    // MARK: - Volume

    mutating func list() throws -> UDFVolume {
        guard imageSize >= 257 * Int64(Self.blockSize) else { throw refuse("the image is too short for an Anchor Volume Descriptor Pointer at sector 256") }
        let lastSector = imageSize / Int64(Self.blockSize) - 1
        var anchor: Descriptor?
        for sector in [256, lastSector - 256, lastSector] where sector >= 256 {
            if let found = try? descriptor(atSector: sector, expecting: [2], tagLocation: UInt32(truncatingIfNeeded: sector)) {
                anchor = found
                break
            }
        }
        guard let anchor else { throw refuse("no valid Anchor Volume Descriptor Pointer at sector 256 or at the end of the image") }
        let main = try anchor.extent(at: 16), reserve = try anchor.extent(at: 24)
        let volume: (logical: Descriptor, partitions: [UInt16: Descriptor])
        do {
            volume = try volumeDescriptors(main)
        } catch let mainError {
            guard let fromReserve = try? volumeDescriptors(reserve) else { throw mainError }
            volume = fromReserve
        }
        let revision = try setUpPartitions(volume.logical, volume.partitions)

        // The File Set Descriptor, then the tree from its root directory.
        let fileSetAddress = try volume.logical.longAD(at: 248)
        let fileSet = try descriptor(inPartition: fileSetAddress.partition, block: fileSetAddress.block, expecting: [256])
        let root = try fileSet.longAD(at: 400)
        return UDFVolume(revision: revision, files: try walk(root: root))
    }
}
