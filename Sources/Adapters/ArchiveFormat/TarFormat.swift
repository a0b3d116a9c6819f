/// POSIX tar (ustar with pax extended headers), just enough to write regular-file members that GNU tar,
/// bsdtar and Python's tarfile all read: names longer than 100 bytes or not ASCII, and sizes of 8 GiB or more,
/// go in a pax `x` header before the member.
package enum TarFormat {
    package static let blockSize = 512

    /// The header block(s) for one regular file: an optional pax header (with its data) and the ustar header.
    package static func headers(name: String, size: Int64, modificationTime: Int64, mode: Int = 0o644) -> [UInt8] {
        var pax: [(String, String)] = []
        let nameBytes = Array(name.utf8)
        let asciiName = nameBytes.allSatisfy { $0 >= 0x20 && $0 < 0x7f }
        if nameBytes.count > 100 || !asciiName { pax.append(("path", name)) }
        if size >= 0o77777777777 { pax.append(("size", String(size))) }
        if modificationTime < 0 || modificationTime >= 0o77777777777 { pax.append(("mtime", String(modificationTime))) }

        var result: [UInt8] = []
        if !pax.isEmpty {
            let records = pax.flatMap { paxRecord($0.0, $0.1) }
            result += header(name: "PaxHeaders/\(safeASCII(name, limit: 80))", size: Int64(records.count), modificationTime: 0, mode: 0o644, type: UInt8(ascii: "x"))
            result += records
            result += padding(for: Int64(records.count))
        }
        result += header(name: safeASCII(name, limit: 100), size: min(size, 0o77777777777 - 1), modificationTime: max(0, min(modificationTime, 0o77777777777 - 1)), mode: mode, type: UInt8(ascii: "0"))
        return result
    }

    /// Zeros that pad a member's data to a whole block.
    package static func padding(for size: Int64) -> [UInt8] {
        let remainder = Int(size % Int64(blockSize))
        return remainder == 0 ? [] : [UInt8](repeating: 0, count: blockSize - remainder)
    }

    /// The end of an archive: two zero blocks.
    package static let trailer = [UInt8](repeating: 0, count: blockSize * 2)

    /// `LEN key=value\n`, where LEN counts the whole record including itself.
    package static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n"
        let bodyLength = body.utf8.count
        var length = bodyLength + 1
        while String(length).utf8.count + bodyLength != length { length += 1 }
        return Array("\(length)\(body)".utf8)
    }

    /// The ustar name field cannot hold everything; readers use the pax path instead.
    package static func safeASCII(_ name: String, limit: Int) -> String {
        let mapped = name.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7f ? Character($0) : "_" }
        return String(String(mapped).suffix(limit))
    }

    package static func header(name: String, size: Int64, modificationTime: Int64, mode: Int, type: UInt8) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: [UInt8], at offset: Int, width: Int) {
            for (index, byte) in bytes.prefix(width).enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(Array(name.utf8), at: 0, width: 100)
        put(octal(Int64(mode), width: 8), at: 100, width: 8)
        put(octal(0, width: 8), at: 108, width: 8)   // uid
        put(octal(0, width: 8), at: 116, width: 8)   // gid
        put(octal(size, width: 12), at: 124, width: 12)
        put(octal(modificationTime, width: 12), at: 136, width: 12)
        put([UInt8](repeating: UInt8(ascii: " "), count: 8), at: 148, width: 8)  // checksum placeholder
        block[156] = type
        put(Array("ustar".utf8) + [0], at: 257, width: 6)
        put(Array("00".utf8), at: 263, width: 2)
        let checksum = block.reduce(0) { $0 + Int64($1) }
        put(octal(checksum, width: 7) + [UInt8(ascii: " ")], at: 148, width: 8)
        return block
    }
}
