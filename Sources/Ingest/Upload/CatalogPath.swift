extension RawPath {
    /// The catalog's text form: the path itself when it is valid UTF-8, otherwise the valid parts with every
    /// other byte written as `\xNN` (the exact bytes are kept beside it in `raw_path`).
    public var catalogText: String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var result = ""
        var index = 0
        while index < bytes.count {
            // Take the longest valid UTF-8 sequence starting here (1-4 bytes), else escape one byte.
            var taken = false
            for length in (1...4).reversed() where index + length <= bytes.count {
                if let scalar = String(validating: bytes[index..<index + length], as: UTF8.self), scalar.unicodeScalars.count == 1 {
                    result += scalar
                    index += length
                    taken = true
                    break
                }
            }
            if !taken {
                result += "\\x" + String(bytes[index], radix: 16, uppercase: true).leftPadded(to: 2)
                index += 1
            }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
