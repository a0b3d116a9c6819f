import Foundation

// MARK: File entries

extension UDFParser {
    struct Entry {
        let fileType: UInt8
        let size: Int64
        let modificationTime: Date?
        let permissions: UInt32
        let pieces: [UDFPiece]
    }

    /// Reads the File Entry (tag 261) or Extended File Entry (tag 266) at an ICB and the list of its extents.
    func entry(partition reference: UInt16, block: UInt32) throws -> Entry {
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
}
