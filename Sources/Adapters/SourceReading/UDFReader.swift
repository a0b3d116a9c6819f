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

    private var partitions: [Partition] = []  // indexed by partition reference number

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

    /// The Main (or Reserve) Volume Descriptor Sequence: the Logical Volume Descriptor and the Partition
    /// Descriptors (the one with the highest sequence number of each wins, ECMA-167 3/8.4.3).
    private func volumeDescriptors(_ extent: (length: UInt32, location: UInt32)) throws -> (logical: Descriptor, partitions: [UInt16: Descriptor]) {
        let sectors = min(Int64(extent.length) / Int64(Self.blockSize), 256)
        guard sectors >= 1 else { throw refuse("the Volume Descriptor Sequence is empty") }
        var logical: Descriptor?
        var partitions: [UInt16: Descriptor] = [:]
        for index in 0..<sectors {
            let sector = Int64(extent.location) + index
            let raw = try readAt(sector * Int64(Self.blockSize), Self.blockSize)
            if raw.prefix(16).allSatisfy({ $0 == 0 }) { break }  // unrecorded: the sequence ends
            let found = try Descriptor(raw, expecting: [1, 3, 4, 5, 6, 7, 8], tagLocation: UInt32(truncatingIfNeeded: sector), parser: self)
            switch found.identifier {
            case 3: throw refuse("Volume Descriptor Pointers (a sequence continued elsewhere) are not supported")
            case 5:
                let number = try found.u16(22)
                if let previous = partitions[number], try previous.u32(16) > found.u32(16) { continue }
                partitions[number] = found
            case 6:
                if let previous = logical, try previous.u32(16) > found.u32(16) { continue }
                logical = found
            case 8: break
            default: continue
            }
            if found.identifier == 8 { break }
        }
        guard let logical else { throw refuse("no Logical Volume Descriptor") }
        return (logical, partitions)
    }

    /// Checks the logical volume is one this reader handles and records where each partition reference points.
    private mutating func setUpPartitions(_ logical: Descriptor, _ descriptors: [UInt16: Descriptor]) throws -> UInt16 {
        let blockSize = try logical.u32(212)
        guard blockSize == UInt32(Self.blockSize) else { throw refuse("logical block size \(blockSize) is not supported (only 2048)") }
        let domain = try logical.identifier(at: 216)
        guard domain == "*OSTA UDF Compliant" else { throw refuse("domain \"\(domain)\" is not OSTA UDF") }
        let revision = try logical.u16(216 + 24)
        guard (0x0100...0x0260).contains(revision) else { throw refuse(String(format: "UDF revision %x is not supported (1.00-2.60)", revision)) }
        let tableLength = Int(try logical.u32(264)), mapCount = try logical.u32(268)
        guard (1...8).contains(mapCount), 440 + tableLength <= logical.bytes.count else { throw refuse("\(mapCount) partition maps in \(tableLength) bytes") }
        var offset = 440
        for _ in 0..<mapCount {
            let type = try logical.u8(offset), length = Int(try logical.u8(offset + 1))
            guard length >= 6, offset + length <= 440 + tableLength else { throw refuse("a partition map of \(length) bytes") }
            if type == 2 {
                let kind = try logical.identifier(at: offset + 4)
                throw refuse("\(kind.isEmpty ? "type 2" : kind) partitions (metadata, virtual or sparable) are not supported")
            }
            guard type == 1, length == 6 else { throw refuse("partition map type \(type) is not supported") }
            let number = try logical.u16(offset + 4)
            guard let partition = descriptors[number] else { throw refuse("no Partition Descriptor for partition \(number)") }
            let contents = try partition.identifier(at: 24)
            guard contents == "+NSR02" || contents == "+NSR03" else { throw refuse("partition contents \"\(contents)\" are not a UDF file system") }
            let start = Int64(try partition.u32(188)), blocks = Int64(try partition.u32(192))
            guard (start + blocks) * Int64(Self.blockSize) <= imageSize else {
                throw refuse("partition \(number) ends at byte \((start + blocks) * Int64(Self.blockSize)), beyond the end of the image (\(imageSize) bytes): truncated image")
            }
            partitions.append(Partition(start: start, length: blocks))
            offset += length
        }
        return revision
    }

    // MARK: - Descriptors

    /// A descriptor whose tag was checked: identifier, checksum, CRC and location.
    struct Descriptor {
        let identifier: UInt16
        let bytes: [UInt8]
        let parser: UDFParser

        init(_ bytes: [UInt8], expecting identifiers: Set<UInt16>, tagLocation: UInt32?, parser: UDFParser) throws {
            self.bytes = bytes
            self.parser = parser
            guard bytes.count >= 16 else { throw parser.refuse("a descriptor tag is cut short") }
            var sum: UInt8 = 0
            for index in 0..<16 where index != 4 { sum &+= bytes[index] }
            identifier = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
            guard sum == bytes[4] else { throw parser.refuse("bad tag checksum in a descriptor of type \(identifier)") }
            guard identifiers.contains(identifier) else {
                throw parser.refuse("found descriptor type \(identifier) where \(identifiers.sorted().map(String.init).joined(separator: " or ")) belongs")
            }
            let crcLength = Int(UInt16(bytes[10]) | UInt16(bytes[11]) << 8)
            guard 16 + crcLength <= bytes.count else { throw parser.refuse("descriptor type \(identifier) claims \(crcLength) bytes beyond its end") }
            let crc = UInt16(bytes[8]) | UInt16(bytes[9]) << 8
            guard UDFParser.crc(bytes[16..<(16 + crcLength)]) == crc else { throw parser.refuse("bad CRC in a descriptor of type \(identifier)") }
            let location = UInt32(bytes[12]) | UInt32(bytes[13]) << 8 | UInt32(bytes[14]) << 16 | UInt32(bytes[15]) << 24
            if let tagLocation, location != tagLocation {
                throw parser.refuse("descriptor type \(identifier) found at block \(tagLocation) says it belongs at \(location)")
            }
        }

        func u8(_ offset: Int) throws -> UInt8 {
            guard offset >= 0, offset < bytes.count else { throw parser.refuse("a field lies beyond its descriptor") }
            return bytes[offset]
        }

        func u16(_ offset: Int) throws -> UInt16 { UInt16(try u8(offset)) | UInt16(try u8(offset + 1)) << 8 }
        func u32(_ offset: Int) throws -> UInt32 { UInt32(try u16(offset)) | UInt32(try u16(offset + 2)) << 16 }
        func u64(_ offset: Int) throws -> UInt64 { UInt64(try u32(offset)) | UInt64(try u32(offset + 4)) << 32 }

        func slice(_ offset: Int, _ count: Int) throws -> ArraySlice<UInt8> {
            guard offset >= 0, count >= 0, offset <= bytes.count - count else { throw parser.refuse("a field lies beyond its descriptor") }
            return bytes[offset..<(offset + count)]
        }

        /// extent_ad (ECMA-167 3/7.1): length, then location.
        func extent(at offset: Int) throws -> (length: UInt32, location: UInt32) { (try u32(offset), try u32(offset + 4)) }

        /// long_ad (4/14.14.2): length (the top two bits are the extent type), block, partition reference.
        func longAD(at offset: Int) throws -> (length: UInt32, block: UInt32, partition: UInt16) {
            (try u32(offset), try u32(offset + 4), try u16(offset + 8))
        }

        /// The identifier of a regid (1/7.4): 23 bytes, NUL-padded.
        func identifier(at offset: Int) throws -> String {
            String(decoding: try slice(offset + 1, 23).prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private func descriptor(atSector sector: Int64, expecting identifiers: Set<UInt16>, tagLocation: UInt32) throws -> Descriptor {
        guard sector >= 0, (sector + 1) * Int64(Self.blockSize) <= imageSize else { throw refuse("sector \(sector) lies beyond the end of the image") }
        return try Descriptor(readAt(sector * Int64(Self.blockSize), Self.blockSize), expecting: identifiers, tagLocation: tagLocation, parser: self)
    }

    private func descriptor(inPartition reference: UInt16, block: UInt32, expecting identifiers: Set<UInt16>) throws -> Descriptor {
        try descriptor(atSector: try sector(partition: reference, block: block, blocks: 1), expecting: identifiers, tagLocation: block)
    }

    /// The image sector of a block of a partition, checking `blocks` blocks from there lie inside it.
    private func sector(partition reference: UInt16, block: UInt32, blocks: Int64) throws -> Int64 {
        guard Int(reference) < partitions.count else { throw refuse("partition reference \(reference) does not exist") }
        let partition = partitions[Int(reference)]
        guard Int64(block) + blocks <= partition.length else {
            throw refuse("blocks \(block)-\(Int64(block) + blocks - 1) lie outside partition \(reference) (\(partition.length) blocks)")
        }
        return partition.start + Int64(block)
    }

    // MARK: - File entries

    struct Entry {
        let fileType: UInt8
        let size: Int64
        let modificationTime: Date?
        let permissions: UInt32
        let pieces: [UDFPiece]
    }

    /// Reads the File Entry (tag 261) or Extended File Entry (tag 266) at an ICB and the list of its extents.
    private func entry(partition reference: UInt16, block: UInt32) throws -> Entry {
        let found = try descriptor(inPartition: reference, block: block, expecting: [261, 266])
        let extended = found.identifier == 266
        let strategy = try found.u16(16 + 4)
        guard strategy == 4 else { throw refuse("ICB strategy \(strategy) is not supported (only 4)") }
        let fileType = try found.u8(16 + 11)
        let flags = try found.u16(16 + 18)
        let size = try found.u64(56)
        // No file on a disc is larger than its partitions: this bounds what a corrupt length makes anyone read.
        let partitionBytes = partitions.reduce(Int64(0)) { $0 + $1.length } * Int64(Self.blockSize)
        guard size <= UInt64(partitionBytes) else { throw refuse("a file claims \(size) bytes, more than its partitions hold (\(partitionBytes))") }
        let modificationTime = try Self.timestamp(found.slice(extended ? 92 : 84, 12))
        let extendedAttributesLength = Int(try found.u32(extended ? 208 : 168))
        let descriptorsLength = Int(try found.u32(extended ? 212 : 172))
        let base = extended ? 216 : 176
        guard extendedAttributesLength <= Self.blockSize, descriptorsLength <= Self.blockSize,
              base + extendedAttributesLength + descriptorsLength <= Self.blockSize else {
            throw refuse("a file entry's attributes and allocation descriptors (\(extendedAttributesLength)+\(descriptorsLength) bytes) overflow its block")
        }
        let descriptors = try found.slice(base + extendedAttributesLength, descriptorsLength)
        var pieces: [UDFPiece]
        switch flags & 7 {
        case 3:
            guard UInt64(descriptorsLength) == size else { throw refuse("embedded data of \(descriptorsLength) bytes for a file of \(size) bytes") }
            pieces = size == 0 ? [] : [.embedded(Array(descriptors))]
        case 0, 1:
            pieces = try extents(descriptors, long: flags & 7 == 1, partition: reference, size: Int64(size))
        default:
            throw refuse("allocation descriptor type \(flags & 7) is not supported (short, long or embedded only)")
        }
        return Entry(fileType: fileType, size: Int64(size), modificationTime: modificationTime, permissions: try found.u32(44), pieces: pieces)
    }

    /// Follows short_ad or long_ad lists (continued in Allocation Extent Descriptors) and returns the file's
    /// content as pieces adding up to exactly `size` bytes.
    private func extents(_ first: ArraySlice<UInt8>, long: Bool, partition reference: UInt16, size: Int64) throws -> [UDFPiece] {
        var pieces: [UDFPiece] = []
        var total: Int64 = 0
        var list = Array(first)
        var visitedContinuations = Set<UInt64>()
        let step = long ? 16 : 8
        lists: while true {
            var offset = 0
            var next: (partition: UInt16, block: UInt32, length: UInt32)?
            while offset + step <= list.count {
                let raw = Self.u32(list, offset)
                let length = Int64(raw & 0x3FFF_FFFF), type = raw >> 30
                let block = Self.u32(list, offset + 4)
                let partition = long ? UInt16(list[offset + 8]) | UInt16(list[offset + 9]) << 8 : reference
                offset += step
                if length == 0 { break }
                if type == 3 {
                    next = (partition, block, raw & 0x3FFF_FFFF)
                    break
                }
                guard pieces.count < Self.maximumExtentsPerFile else { throw refuse("more than \(Self.maximumExtentsPerFile) extents in one file") }
                if total >= size { continue }  // recorded beyond the information length: never read
                let used = min(length, size - total)
                if type == 0 {
                    let blocks = (length + Int64(Self.blockSize) - 1) / Int64(Self.blockSize)
                    let sector = try sector(partition: partition, block: block, blocks: blocks)
                    pieces.append(.recorded(offset: sector * Int64(Self.blockSize), length: used))
                } else {
                    pieces.append(.zeros(length: used))
                }
                total += used
            }
            guard let continuation = next else { break lists }
            // An Allocation Extent Descriptor (tag 258) carries the rest of the list.
            let key = UInt64(continuation.partition) << 32 | UInt64(continuation.block)
            guard visitedContinuations.insert(key).inserted, visitedContinuations.count <= Self.maximumAllocationExtentBlocks else {
                throw refuse("the allocation descriptors of a file loop back on themselves")
            }
            let extentDescriptor = try descriptor(inPartition: continuation.partition, block: continuation.block, expecting: [258])
            let length = Int(try extentDescriptor.u32(20))
            guard 24 + length <= Self.blockSize else { throw refuse("an allocation extent claims \(length) bytes of descriptors") }
            list = Array(try extentDescriptor.slice(24, length))
        }
        guard total == size else { throw refuse("allocation descriptors hold \(total) bytes of a file of \(size) bytes") }
        return pieces
    }

    // MARK: - Directories

    /// Lists the tree under the root directory, depth first with an explicit stack (no recursion to overflow).
    private func walk(root: (length: UInt32, block: UInt32, partition: UInt16)) throws -> [UDFFile] {
        var files: [UDFFile] = []
        var visitedDirectories: Set<UInt64> = [Self.key(root.partition, root.block)]
        var stack: [(path: RawPath, partition: UInt16, block: UInt32)] = [(RawPath(bytes: []), root.partition, root.block)]
        while let directory = stack.popLast() {
            let entry = try entry(partition: directory.partition, block: directory.block)
            guard entry.fileType == 4 else { throw refuse("\(directory.path.bytes.isEmpty ? "the root" : directory.path.string) is listed as a directory but its entry is of type \(entry.fileType)") }
            guard entry.size <= Self.maximumDirectoryBytes else { throw refuse("a directory of \(entry.size) bytes") }
            let data = try read(entry.pieces, limit: Self.maximumDirectoryBytes)
            var names = Set<RawPath>()
            var offset = 0
            while offset < data.count {
                guard data.count - offset >= 38 else { throw refuse("a file identifier descriptor in \(directory.path.string) is cut short") }
                let implementationUseLength = Int(Self.u16(data, offset + 36)), nameLength = Int(data[offset + 19])
                let length = (38 + implementationUseLength + nameLength + 3) / 4 * 4
                guard length <= data.count - offset || 38 + implementationUseLength + nameLength <= data.count - offset else {
                    throw refuse("a file identifier descriptor in \(directory.path.string) runs past the directory's end")
                }
                let descriptorEnd = min(offset + length, data.count)
                let identifier = try Descriptor(Array(data[offset..<descriptorEnd]), expecting: [257], tagLocation: nil, parser: self)
                offset = descriptorEnd
                let characteristics = try identifier.u8(18)
                if characteristics & 0x0C != 0 { continue }  // deleted (4) or the parent entry (8)
                let nameBytes = try identifier.slice(38 + implementationUseLength, nameLength)
                guard let name = Self.decodeCS0(nameBytes), !name.isEmpty, name != ".", name != "..",
                      !name.utf8.contains(UInt8(ascii: "/")), !name.utf8.contains(0) else {
                    throw refuse("a name in \(directory.path.bytes.isEmpty ? "the root directory" : directory.path.string) is not a valid OSTA CS0 file name")
                }
                let path = directory.path.appending(RawPath(name))
                guard names.insert(RawPath(name)).inserted else { throw refuse("\(path.string) appears twice") }
                let icb = try identifier.longAD(at: 20)
                let child = try self.entry(partition: icb.partition, block: icb.block)
                let isDirectory = characteristics & 0x02 != 0
                guard isDirectory == (child.fileType == 4) else { throw refuse("\(path.string): directory flag and entry type \(child.fileType) disagree") }
                guard files.count < Self.maximumEntries else { throw refuse("more than \(Self.maximumEntries) entries") }
                let permissions = Self.posixPermissions(child.permissions)
                let kind: UDFFile.Kind
                switch child.fileType {
                case 4:
                    guard visitedDirectories.insert(Self.key(icb.partition, icb.block)).inserted else {
                        throw refuse("\(path.string) loops back to a directory already listed")
                    }
                    stack.append((path, icb.partition, icb.block))
                    kind = .directory
                case 5, 249:  // a byte sequence; 249 is UDF's real-time file, also plain bytes
                    kind = .file
                case 12:
                    guard child.size <= Self.maximumSymlinkBytes else { throw refuse("\(path.string): a symbolic link of \(child.size) bytes") }
                    kind = .symlink(target: try symlinkTarget(read(child.pieces, limit: Self.maximumSymlinkBytes), path: path))
                case 6, 7, 9, 10:
                    let type: UInt32 = [6: 0o060000, 7: 0o020000, 9: 0o010000, 10: 0o140000][child.fileType] ?? 0
                    kind = .other(mode: type | permissions)
                default:
                    throw refuse("\(path.string): file type \(child.fileType) is not supported")
                }
                let typeBits: UInt32 = switch kind {
                case .file: 0o100000
                case .directory: 0o040000
                case .symlink: 0o120000
                case .other(let mode): mode & 0o170000
                }
                files.append(UDFFile(
                    path: path, kind: kind, size: kind == .file ? child.size : 0, modificationTime: child.modificationTime,
                    mode: typeBits | permissions, entry: Self.key(icb.partition, icb.block), pieces: kind == .file ? child.pieces : []))
            }
        }
        return files
    }

    /// The whole content of a small object (a directory, a symlink), at most `limit` bytes.
    private func read(_ pieces: [UDFPiece], limit: Int64) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for piece in pieces {
            guard Int64(bytes.count) + piece.length <= limit else { throw refuse("an object of more than \(limit) bytes") }
            switch piece {
            case .recorded(let offset, let length):
                guard offset + length <= imageSize else { throw refuse("data at byte \(offset) lies beyond the end of the image: truncated image") }
                bytes += try readAt(offset, Int(length))
            case .zeros(let length): bytes += [UInt8](repeating: 0, count: Int(length))
            case .embedded(let data): bytes += data
            }
        }
        return bytes
    }

    /// A symbolic link's target from its path components (ECMA-167 4/14.16).
    private func symlinkTarget(_ data: [UInt8], path: RawPath) throws -> RawPath {
        var parts: [String] = []
        var offset = 0
        var absolute = false
        while offset + 4 <= data.count {
            let type = data[offset], length = Int(data[offset + 1])
            guard offset + 4 + length <= data.count else { throw refuse("\(path.string): a symbolic link's path is cut short") }
            let identifier = data[(offset + 4)..<(offset + 4 + length)]
            offset += 4 + length
            switch type {
            case 1, 2: absolute = true; parts = []
            case 3: parts.append("..")
            case 4: parts.append(".")
            case 5:
                guard let name = Self.decodeCS0(identifier) else { throw refuse("\(path.string): a symbolic link's target is not OSTA CS0") }
                parts.append(name)
            default: throw refuse("\(path.string): path component type \(type) in a symbolic link")
            }
        }
        return RawPath((absolute ? "/" : "") + parts.joined(separator: "/"))
    }

    // MARK: - Fields

    static func key(_ partition: UInt16, _ block: UInt32) -> UInt64 { UInt64(partition) << 32 | UInt64(block) }

    static func u16(_ bytes: [UInt8], _ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { UInt32(u16(bytes, offset)) | UInt32(u16(bytes, offset + 2)) << 16 }

    /// ECMA-167 permissions (other, group, owner: execute 1, write 2, read 4 in five-bit groups) as POSIX bits.
    static func posixPermissions(_ permissions: UInt32) -> UInt32 {
        (permissions & 7) | ((permissions >> 5) & 7) << 3 | ((permissions >> 10) & 7) << 6
    }

    /// OSTA Compressed Unicode (UDF 2.1.1): compression ID 8 (one byte per code point) or 16 (UTF-16 big-endian).
    /// Nil for anything else, an odd byte count or an unpaired surrogate.
    static func decodeCS0(_ bytes: ArraySlice<UInt8>) -> String? {
        guard let compression = bytes.first else { return nil }
        let rest = bytes.dropFirst()
        switch compression {
        case 8:
            return String(String.UnicodeScalarView(rest.map { Unicode.Scalar($0) }))
        case 16:
            guard rest.count % 2 == 0 else { return nil }
            var units: [UInt16] = []
            units.reserveCapacity(rest.count / 2)
            var index = rest.startIndex
            while index < rest.endIndex {
                units.append(UInt16(rest[index]) << 8 | UInt16(rest[index + 1]))
                index += 2
            }
            var scalars = String.UnicodeScalarView()
            var decoder = UTF16()
            var iterator = units.makeIterator()
            while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let scalar): scalars.append(scalar)
                case .emptyInput: return String(scalars)
                case .error: return nil
                }
            }
        default:
            return nil
        }
    }

    /// A timestamp (ECMA-167 1/7.3); nil when unset or out of range.
    static func timestamp(_ bytes: ArraySlice<UInt8>) -> Date? {
        let b = Array(bytes)
        guard b.count == 12 else { return nil }
        let typeAndZone = u16(b, 0)
        var zone = Int(typeAndZone & 0x0FFF)
        if zone & 0x0800 != 0 { zone -= 0x1000 }
        let year = Int(Int16(bitPattern: u16(b, 2)))
        let month = Int(b[4]), day = Int(b[5]), hour = Int(b[6]), minute = Int(b[7]), second = Int(b[8])
        guard (1...9999).contains(year), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61,
              b[9] < 100, b[10] < 100, b[11] < 100 else { return nil }
        // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        var seconds = Double(days * 86_400 + hour * 3_600 + minute * 60 + second)
        if typeAndZone >> 12 == 1, zone != -2047 { seconds -= Double(zone * 60) }  // local time with its offset
        seconds += Double(b[9]) / 100 + Double(b[10]) / 10_000 + Double(b[11]) / 1_000_000
        return Date(timeIntervalSince1970: seconds)
    }

    /// CRC-ITU-T (polynomial 0x1021, initial 0) as ECMA-167 1/7.2.6 defines the descriptor CRC.
    static func crc(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }
}
