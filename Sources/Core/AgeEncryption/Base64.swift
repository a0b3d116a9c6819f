/// Standard base64 without `=` padding, as the age header uses it. Decoding is strict: only the 64 alphabet
/// characters, no padding, no line breaks, and the unused low bits of the last character must be zero (canonical),
/// so that one byte string has exactly one encoding and the header cannot be altered without breaking its MAC.
enum AgeBase64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = UInt8(value) }
        return table
    }()

    static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((input.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= input.count {
            let group = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int(group >> UInt32(shift) & 63)]) }
            index += 3
        }
        switch input.count - index {
        case 1:
            let group = UInt32(input[index]) << 16
            for shift in [18, 12] { out.append(alphabet[Int(group >> UInt32(shift) & 63)]) }
        case 2:
            let group = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            for shift in [18, 12, 6] { out.append(alphabet[Int(group >> UInt32(shift) & 63)]) }
        default: break
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil for anything that is not the canonical unpadded encoding of some bytes.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var group: UInt32 = 0
        var count = 0
        for character in text {
            let value = values[Int(character)]
            guard value != 0xff else { return nil }
            group = group << 6 | UInt32(value)
            count += 1
            if count == 4 {
                out.append(UInt8(group >> 16 & 0xff))
                out.append(UInt8(group >> 8 & 0xff))
                out.append(UInt8(group & 0xff))
                group = 0
                count = 0
            }
        }
        switch count {
        case 0: break
        case 2:  // 12 bits: one byte, 4 unused bits
            guard group & 0x0f == 0 else { return nil }
            out.append(UInt8(group >> 4))
        case 3:  // 18 bits: two bytes, 2 unused bits
            guard group & 0x03 == 0 else { return nil }
            out.append(UInt8(group >> 10 & 0xff))
            out.append(UInt8(group >> 2 & 0xff))
        default: return nil  // a single leftover character cannot encode a byte
        }
        return out
    }

    static func decode(_ text: String) -> [UInt8]? { decode(Array(text.utf8)) }
}
