// MARK: Descriptors

extension UDFParser {
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

    func descriptor(atSector sector: Int64, expecting identifiers: Set<UInt16>, tagLocation: UInt32) throws -> Descriptor {
        guard sector >= 0, (sector + 1) * Int64(Self.blockSize) <= imageSize else { throw refuse("sector \(sector) lies beyond the end of the image") }
        return try Descriptor(readAt(sector * Int64(Self.blockSize), Self.blockSize), expecting: identifiers, tagLocation: tagLocation, parser: self)
    }

    func descriptor(inPartition reference: UInt16, block: UInt32, expecting identifiers: Set<UInt16>) throws -> Descriptor {
        try descriptor(atSector: try sector(partition: reference, block: block, blocks: 1), expecting: identifiers, tagLocation: block)
    }

    /// The image sector of a block of a partition, checking `blocks` blocks from there lie inside it.
    func sector(partition reference: UInt16, block: UInt32, blocks: Int64) throws -> Int64 {
        guard Int(reference) < partitions.count else { throw refuse("partition reference \(reference) does not exist") }
        let partition = partitions[Int(reference)]
        guard Int64(block) + blocks <= partition.length else {
            throw refuse("blocks \(block)-\(Int64(block) + blocks - 1) lie outside partition \(reference) (\(partition.length) blocks)")
        }
        return partition.start + Int64(block)
    }
}
