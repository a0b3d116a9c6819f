#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PipelineCore
import SystemIO

/// What a file is, and why the classifier thinks so (for logs and the catalog's error/notes).
public struct Classification: Sendable, Hashable, CustomStringConvertible {
    public let kind: FileKind
    /// Short format name: "dv", "avi", "mpeg-ps", "mpeg-ts", "m2ts", "quicktime", "mp4", "3gp", "matroska",
    /// "webm", "asf", "flv", "mjpeg", "mpeg-video", "iso9660", "udf"; for regular files "empty", "unknown", or the
    /// near miss ("heif-image", "m4a-audio", "asf-audio"…).
    public let format: String
    /// One line for logs when the decision may surprise (an extension the content contradicts).
    public let note: String?

    public init(kind: FileKind, format: String, note: String? = nil) {
        self.kind = kind
        self.format = format
        self.note = note
    }

    public var description: String { note.map { "\(kind.rawValue) (\(format)): \($0)" } ?? "\(kind.rawValue) (\(format))" }
}

/// Decides `video`, `discImage` or `regular` from the first bytes of a file plus its extension.
///
/// Content decides: a `.avi` that holds text is regular, an MPEG-PS named `.dat` is video. The extension only
/// separates what content alone cannot: raw MJPEG (a JPEG stream: video only when named .mjpg/.mjpeg/.avi, since
/// a `.jpg` photo starts the same way) and audio-only files in video containers (.m4a, .wma, .mka → regular).
/// The transcoder may still correct a wrong guess when it probes the file.
public enum FileClassifier {
    /// Bytes of the head the classifier looks at: enough for the ISO 9660/UDF volume descriptors at 32 KiB.
    public static let headLength = 64 * 1024

    /// Extensions that usually mean video, for the note when the content says otherwise.
    static let videoExtensions: Set<String> = [
        "dv", "dif", "avi", "mpg", "mpeg", "mpe", "vob", "mod", "m2v", "ts", "m2t", "mts", "m2ts", "tod", "mov", "qt",
        "mp4", "m4v", "3gp", "3g2", "mkv", "webm", "wmv", "asf", "flv", "mjpg", "mjpeg",
    ]

    /// Classifies from `head` (the first ``headLength`` bytes, or the whole file if shorter, e.g. the first chunk
    /// the uploader reads anyway) and the file name. `fileSize`, when known, helps reject false matches.
    public static func classify(head: some Collection<UInt8>, fileName: String, fileSize: Int64? = nil) -> Classification {
        let bytes = Array(head.prefix(headLength))
        let ext = fileExtension(fileName)
        if let found = sniff(bytes, ext: ext, fileSize: fileSize) { return found }
        if bytes.isEmpty && (fileSize ?? 0) == 0 { return Classification(kind: .regular, format: "empty") }
        if videoExtensions.contains(ext) {
            return Classification(kind: .regular, format: "unknown", note: "named .\(ext) but the content is not a known video format")
        }
        if ext == "iso" {
            return Classification(kind: .regular, format: "unknown", note: "named .iso but has no ISO 9660 or UDF volume descriptor")
        }
        return Classification(kind: .regular, format: "unknown")
    }

    /// Reads the head of a file (on the thread pool) and classifies it.
    public static func classify(fileAt path: RawPath) async throws -> Classification {
        let (head, size) = try await blocking { () -> ([UInt8], Int64) in
            let file = try DescriptorFile(opening: path)
            defer { file.close() }
            var buffer = [UInt8](repeating: 0, count: headLength)
            var total = 0
            while total < headLength {
                let got = try buffer.withUnsafeMutableBytes {
                    try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[total...]), at: Int64(total))
                }
                if got == 0 { break }
                total += got
            }
            return (Array(buffer[0..<total]), try file.currentSize())
        }
        return classify(head: head, fileName: path.lastComponent.string, fileSize: size)
    }

    static func fileExtension(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        return String(name[name.index(after: dot)...]).lowercased()
    }

    private static func sniff(_ b: [UInt8], ext: String, fileSize: Int64?) -> Classification? {
        func at(_ offset: Int, _ signature: [UInt8]) -> Bool {
            offset >= 0 && b.count >= offset + signature.count && Array(b[offset..<(offset + signature.count)]) == signature
        }
        func ascii(_ offset: Int, _ text: String) -> Bool { at(offset, Array(text.utf8)) }

        // Disc images first: their signature sits at a fixed far offset, and the system area before it is
        // zeros or boot code that no video check would take.
        var iso9660 = false, udf = false
        for sector in 0..<8 {
            let offset = 32768 + sector * 2048 + 1
            if ascii(offset, "CD001") { iso9660 = true }
            if ascii(offset, "BEA01") || ascii(offset, "NSR02") || ascii(offset, "NSR03") { udf = true }
        }
        if iso9660 || udf { return Classification(kind: .discImage, format: iso9660 ? (udf ? "iso9660+udf" : "iso9660") : "udf") }

        // DV: DIF sequence header block (section type 0, "1F 07 00"), then the DSF bit (PAL/NTSC) and 0x3F.
        if b.count >= 4 && b[0] == 0x1F && b[1] == 0x07 && b[2] == 0x00 && (b[3] & 0x7F) == 0x3F
            && (b.count < 81 || b[80] & 0xE0 == 0x20) {
            return Classification(kind: .video, format: "dv")
        }
        if ascii(0, "RIFF") && ascii(8, "AVI ") { return Classification(kind: .video, format: "avi") }
        if at(0, [0x00, 0x00, 0x01, 0xBA]) { return Classification(kind: .video, format: "mpeg-ps") }
        if at(0, [0x00, 0x00, 0x01, 0xB3]) { return Classification(kind: .video, format: "mpeg-video") }
        if isTransportStream(b, packet: 188, first: 0) { return Classification(kind: .video, format: "mpeg-ts") }
        if isTransportStream(b, packet: 192, first: 4) { return Classification(kind: .video, format: "m2ts") }
        if let found = isoBaseMedia(b, fileSize: fileSize) { return found }
        if at(0, [0x1A, 0x45, 0xDF, 0xA3]) {
            let webm = containsASCII(b.prefix(4096), "webm")
            if ext == "mka" || ext == "weba" { return Classification(kind: .regular, format: "matroska-audio") }
            return Classification(kind: .video, format: webm ? "webm" : "matroska")
        }
        if at(0, [0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) {
            if ext == "wma" { return Classification(kind: .regular, format: "asf-audio") }
            return Classification(kind: .video, format: "asf")
        }
        if ascii(0, "FLV") && b.count > 4 && b[3] == 0x01 {
            // Flags: bit 0 video, bit 2 audio. Audio-only FLV is not video.
            if b[4] & 0x01 == 0 && b[4] & 0x04 != 0 { return Classification(kind: .regular, format: "flv-audio") }
            return Classification(kind: .video, format: "flv")
        }
        if at(0, [0xFF, 0xD8, 0xFF]) && ["mjpg", "mjpeg", "avi"].contains(ext) {
            return Classification(kind: .video, format: "mjpeg")
        }
        return nil
    }

    /// 0x47 sync bytes every `packet` bytes from `first`: at least three packets, all that are in the head.
    private static func isTransportStream(_ b: [UInt8], packet: Int, first: Int) -> Bool {
        var offset = first, count = 0
        while offset < b.count && count < 32 {
            guard b[offset] == 0x47 else { return false }
            offset += packet
            count += 1
        }
        return count >= 3
    }

    /// ISO base media / QuickTime: a known top-level atom type at offset 4 with a plausible size.
    private static func isoBaseMedia(_ b: [UInt8], fileSize: Int64?) -> Classification? {
        guard b.count >= 8 else { return nil }
        let size = UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
        let type = String(decoding: b[4..<8], as: UTF8.self)
        guard ["ftyp", "moov", "mdat", "wide", "free", "skip", "pnot"].contains(type) else { return nil }
        // 0: to the end of the file, 1: 64-bit size follows; otherwise at least the header and within the file.
        guard size == 0 || size == 1 || (size >= 8 && (fileSize.map { Int64(size) <= $0 } ?? true)) else { return nil }
        guard type == "ftyp" else { return Classification(kind: .video, format: "quicktime") }
        guard b.count >= 12 else { return Classification(kind: .video, format: "mp4") }
        let brand = String(decoding: b[8..<12], as: UTF8.self)
        // Stills and audio share the container: HEIF/AVIF photos, Canon CR3 raws, M4A/M4B audio.
        if ["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1", "avif", "avis", "crx "].contains(brand) {
            return Classification(kind: .regular, format: "heif-image")
        }
        if ["M4A ", "M4B ", "M4P ", "F4A ", "F4B "].contains(brand) { return Classification(kind: .regular, format: "m4a-audio") }
        if brand == "qt  " { return Classification(kind: .video, format: "quicktime") }
        if brand.hasPrefix("3g") { return Classification(kind: .video, format: "3gp") }
        return Classification(kind: .video, format: "mp4")
    }

    private static func containsASCII(_ haystack: some Collection<UInt8>, _ needle: String) -> Bool {
        let n = Array(needle.utf8), h = Array(haystack)
        guard h.count >= n.count else { return false }
        for i in 0...(h.count - n.count) where h[i] == n[0] && Array(h[i..<(i + n.count)]) == n { return true }
        return false
    }
}
