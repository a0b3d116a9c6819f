import Foundation

// MARK: Volume descriptors

extension UDFParser {
    /// The Main (or Reserve) Volume Descriptor Sequence: the Logical Volume Descriptor and the Partition
    /// Descriptors (the one with the highest sequence number of each wins, ECMA-167 3/8.4.3).
    func volumeDescriptors(_ extent: (length: UInt32, location: UInt32)) throws -> (logical: Descriptor, partitions: [UInt16: Descriptor]) {
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
    mutating func setUpPartitions(_ logical: Descriptor, _ descriptors: [UInt16: Descriptor]) throws -> UInt16 {
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
}
