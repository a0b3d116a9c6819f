import Media
import Testing

/// The recording date and time of a DV frame, from its VAUX packs, on frames built here byte by byte (the
/// integration test reads frames ffmpeg's DV muxer stamped).
@Suite("DV recording stamps")
struct DVRecordingStampTests {
    /// One DIF sequence whose VAUX blocks carry `packs` (5 bytes each).
    static func frame(_ packs: [[UInt8]]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xFF, count: 150 * 80)
        for block in 3...5 {
            bytes[block * 80] = 0x56
            for (index, pack) in packs.enumerated() { bytes.replaceSubrange((block * 80 + 3 + index * 5)..<(block * 80 + 8 + index * 5), with: pack) }
        }
        return bytes
    }

    @Test("date and time packs read as BCD, the flag bits masked; a frame without them, or with nonsense, has none")
    func reading() {
        let stamped = Self.frame([[0x62, 0xFF, 0xD2, 0x06, 0x04], [0x63, 0xFF, 0xA2, 0x83, 0xD4]])
        let stamp = stamped.withUnsafeBytes { DVRecordingStamp.read(frame: $0) }
        #expect(stamp?.description == "2004-06-12 14:03:22")
        let nineties = Self.frame([[0x62, 0xFF, 0x01, 0x12, 0x98], [0x63, 0xFF, 0x00, 0x00, 0x00]])
        #expect(nineties.withUnsafeBytes { DVRecordingStamp.read(frame: $0) }?.description == "1998-12-01 00:00:00")
        #expect(Self.frame([]).withUnsafeBytes { DVRecordingStamp.read(frame: $0) } == nil)
        let nonsense = Self.frame([[0x62, 0xFF, 0x3F, 0x1F, 0xAA], [0x63, 0xFF, 0x7F, 0x7F, 0x3F]])
        #expect(nonsense.withUnsafeBytes { DVRecordingStamp.read(frame: $0) } == nil)
        #expect([UInt8](repeating: 0, count: 100).withUnsafeBytes { DVRecordingStamp.read(frame: $0) } == nil)
    }
}
