/// Bech32 (BIP 173) without its 90-character limit, as age encodes keys: `age1…` recipients and
/// `AGE-SECRET-KEY-1…` identities. All lower or all upper case; the checksum is over the lower-case form.
enum Bech32 {
    private static let charset: [UInt8] = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (value, character) in charset.enumerated() { table[Int(character)] = Int8(value) }
        return table
    }()

    enum Failure: Error { case mixedCase, noSeparator, badCharacter, badChecksum, badPadding }

    static func encode(humanReadablePart: String, data: [UInt8]) -> String {
        let upper = humanReadablePart.uppercased() == humanReadablePart && humanReadablePart.lowercased() != humanReadablePart
        let hrp = humanReadablePart.lowercased()
        let values = regroup(data, from: 8, to: 5, pad: true) ?? []
        let checksum = self.checksum(hrp: hrp, values: values)
        let text = hrp + "1" + String(decoding: (values + checksum).map { charset[Int($0)] }, as: UTF8.self)
        return upper ? text.uppercased() : text
    }

    /// The human-readable part as written (its case tells the caller which key kind it is) and the data.
    static func decode(_ text: String) throws(Failure) -> (humanReadablePart: String, data: [UInt8]) {
        guard text.lowercased() == text || text.uppercased() == text else { throw .mixedCase }
        let bytes = Array(text.utf8)
        guard let separator = bytes.lastIndex(of: UInt8(ascii: "1")), separator >= 1, separator + 7 <= bytes.count else { throw .noSeparator }
        let hrpBytes = bytes[..<separator]
        guard hrpBytes.allSatisfy({ (33...126).contains($0) }) else { throw .badCharacter }
        var values: [UInt8] = []
        for character in bytes[(separator + 1)...] {
            let lower = (65...90).contains(character) ? character + 32 : character
            guard lower < 128, Self.values[Int(lower)] >= 0 else { throw .badCharacter }
            values.append(UInt8(Self.values[Int(lower)]))
        }
        let hrp = String(decoding: hrpBytes, as: UTF8.self)
        guard polymod(expand(hrp.lowercased()) + values) == 1 else { throw .badChecksum }
        guard let data = regroup(Array(values.dropLast(6)), from: 5, to: 8, pad: false) else { throw .badPadding }
        return (hrp, data)
    }

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var check: UInt32 = 1
        for value in values {
            let top = check >> 25
            check = (check & 0x1ff_ffff) << 5 ^ UInt32(value)
            for bit in 0..<5 where (top >> UInt32(bit)) & 1 == 1 { check ^= generator[bit] }
        }
        return check
    }

    private static func expand(_ hrp: String) -> [UInt8] {
        let bytes = Array(hrp.utf8)
        return bytes.map { $0 >> 5 } + [0] + bytes.map { $0 & 31 }
    }

    private static func checksum(hrp: String, values: [UInt8]) -> [UInt8] {
        let mod = polymod(expand(hrp) + values + [0, 0, 0, 0, 0, 0]) ^ 1
        return (0..<6).map { UInt8(mod >> UInt32(5 * (5 - $0)) & 31) }
    }

    /// Regroups bits (8 → 5 to encode, 5 → 8 to decode). Decoding refuses leftover bits that are not zero
    /// padding of less than one group, as BIP 173 requires.
    private static func regroup(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var accumulator = 0
        var bits = 0
        var out: [UInt8] = []
        let mask = (1 << to) - 1
        for value in data {
            accumulator = accumulator << from | Int(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8(accumulator >> bits & mask))
            }
            accumulator &= (1 << bits) - 1
        }
        if pad {
            if bits > 0 { out.append(UInt8(accumulator << (to - bits) & mask)) }
        } else if bits >= from || (accumulator << (to - bits)) & mask != 0 {
            return nil
        }
        return out
    }
}
