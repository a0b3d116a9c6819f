import PipelineCore
import SourceReading
import Testing

/// AVCHD playlists built here byte by byte: which clips are one recording (the integration test sends a card
/// with such a playlist through the workers).
@Suite("AVCHD playlists")
struct AVCHDPlaylistTests {
    /// An MPLS with one PlayItem per (clip, connection condition).
    static func playlist(_ items: [(String, UInt8)], version: String = "0100") -> [UInt8] {
        var bytes = Array("MPLS\(version)".utf8) + [0, 0, 0, 64] + [UInt8](repeating: 0, count: 52)
        var body: [UInt8] = []
        for (clip, condition) in items {
            let item = Array(clip.utf8) + Array("M2TS".utf8) + [0, condition, 0] + [UInt8](repeating: 0, count: 22)
            body += [0, UInt8(item.count)] + item
        }
        bytes += [0, 0, 0, UInt8(6 + body.count), 0, 0, 0, UInt8(items.count), 0, 0] + body
        return bytes
    }

    @Test("seamless connections (5 and 6) join clips into one recording; any other condition starts a new one")
    func recordings() throws {
        let items = try #require(AVCHDPlaylist.items(Self.playlist([("00000", 1), ("00001", 6), ("00002", 5), ("00003", 1), ("00004", 6)])))
        #expect(items.map(\.clip) == ["00000", "00001", "00002", "00003", "00004"])
        let recordings = AVCHDPlaylist.recordings(items)
        #expect(recordings == [["00000", "00001", "00002"], ["00003", "00004"]])
        #expect(AVCHDRecordingsDetail.recordings(AVCHDRecordingsDetail.text(recordings)) == recordings)
        // The first item never continues anything, whatever its condition says.
        #expect(AVCHDPlaylist.recordings(try #require(AVCHDPlaylist.items(Self.playlist([("00007", 6)])))) == [["00007"]])
    }

    @Test("not a playlist, or cut short: nil, never a crash; playlist paths recognised without case")
    func damaged() {
        let good = Self.playlist([("00000", 1), ("00001", 6)])
        #expect(AVCHDPlaylist.items(Array("XPLS".utf8) + good.dropFirst(4)) == nil)
        for cut in 0..<good.count { _ = AVCHDPlaylist.items(Array(good.prefix(cut))) }
        #expect(AVCHDPlaylist.items(Array(good.prefix(good.count - 3))) == nil)
        #expect(AVCHDPlaylist.isPlaylist(path: "card/PRIVATE/AVCHD/BDMV/PLAYLIST/00000.MPL"))
        #expect(AVCHDPlaylist.isPlaylist(path: "bdmv/playlist/00001.mpls"))
        #expect(!AVCHDPlaylist.isPlaylist(path: "BDMV/STREAM/00000.MTS"))
    }
}
