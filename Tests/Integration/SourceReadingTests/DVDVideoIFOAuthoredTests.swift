import Foundation
import PipelineCore
import Testing
import TestSupport
@testable import SourceReading

/// The IFO parser on what dvdauthor really writes (authored here at test time with the ffmpeg CLI and dvdauthor):
/// a title set with two titles, the second playing the first's clip again after its own, which dvdauthor stores
/// once and lists in both program chains.
@Suite("DVD-Video IFO of a set with several titles (dvdauthor)", .onOwnThreads)
struct DVDVideoIFOAuthoredTests {
    @Test("two program chains, one cell shared: two titles, each with its own cells in play order and its own chapters")
    func twoTitlesSharingACell() throws {
        let directory = try TemporaryDirectory()
        let ffmpeg = try #require(which("ffmpeg"), "ffmpeg is installed by scripts/test")
        let dvdauthor = try #require(which("dvdauthor"), "dvdauthor is installed by scripts/test")
        for (colour, seconds) in [("red", 2), ("blue", 3)] {
            try run(ffmpeg, ["-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=\(colour):size=720x576:rate=25",
                             "-t", "\(seconds)", "-target", "pal-dvd", "-an", "-y", directory.file("\(colour).mpg")])
        }
        try directory.write("dvd.xml", """
            <dvdauthor dest="\(directory.file("DVD"))">
              <vmgm/>
              <titleset><titles>
                <pgc><vob file="\(directory.file("red.mpg"))" chapters="0,1"/></pgc>
                <pgc><vob file="\(directory.file("blue.mpg"))" chapters="0,1.5"/><vob file="\(directory.file("red.mpg"))" chapters="0,1"/></pgc>
              </titles></titleset>
            </dvdauthor>
            """)
        try run("/usr/bin/env", ["VIDEO_FORMAT=PAL", dvdauthor, "-x", directory.file("dvd.xml")])

        for name in ["VTS_01_0.IFO", "VTS_01_0.BUP"] {
            let bytes = Array(try Data(contentsOf: directory.url("DVD/VIDEO_TS/" + name)))
            let layout = try #require(DVDVideoIFO.layout(bytes), "\(name)")
            let titles = layout.titles
            #expect(titles.map(\.number) == [1, 2], "\(name): \(titles)")
            guard titles.count == 2 else { continue }
            let red = titles[0].cells
            #expect(red.count == 2 && red[0].firstSector == 0, "red in two cells (two chapters), at the start: \(red)")
            #expect(Array(titles[1].cells.suffix(red.count)) == red, "the second title plays red's cells again, the same sectors: \(titles[1].cells)")
            let blue = titles[1].cells.prefix(titles[1].cells.count - red.count)
            #expect(blue.count == 2 && blue.allSatisfy { $0.firstSector > red.last!.lastSector }, "blue's own cells, after red's: \(blue)")

            let lengths = titles.map { $0.cells.reduce(0) { $0 + $1.seconds } }
            #expect(abs(lengths[0] - 2) < 0.1 && abs(lengths[1] - 5) < 0.1, "\(lengths)")
            // Chapters move to the nearest GOP (12 frames, 0.48 s at PAL).
            #expect(titles[0].chapterStarts.count == 2 && abs(titles[0].chapterStarts[1] - 1) < 0.5, "\(titles[0].chapterStarts)")
            let second = titles[1].chapterStarts
            #expect(second.count == 4 && abs(second[1] - 1.5) < 0.5 && abs(second[2] - 3) < 0.05 && abs(second[3] - 4) < 0.5, "\(second)")
            #expect(layout.cells.count == 4, "the whole set plays each of its four cells once: \(layout.cells)")

            let detail = titles.map { DVDTitlesDetail.Title(number: $0.number, cells: $0.cells.map { $0.firstSector...$0.lastSector }, chapterStarts: $0.chapterStarts) }
            #expect(DVDTitlesDetail.titles(DVDTitlesDetail.text(detail))?.map(\.cells) == detail.map(\.cells))
        }
    }
}
