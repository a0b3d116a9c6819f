import Foundation

// MARK: Fields

extension UDFParser {
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
