import PipelineCore
import SourceReading
import Testing

/// Chapter starts from a title set's IFO, on IFOs built here byte by byte (the integration test reads one that
/// dvdauthor wrote).
@Suite("DVD-Video IFO chapters")
struct DVDVideoIFOTests {
    /// A cell: its length as BCD hh:mm:ss:ff at 25 fps, and its first sector.
    typealias Cell = (hours: UInt8, minutes: UInt8, seconds: UInt8, frames: UInt8, sector: UInt32)

    /// A VTS IFO with one program chain per element of `chains`: (entry cells of its programs, its cells).
    static func ifo(_ chains: [(programs: [UInt8], cells: [Cell])]) -> [UInt8] {
        func bcd(_ value: UInt8) -> UInt8 { (value / 10) << 4 | (value % 10) }
        func put16(_ bytes: inout [UInt8], _ at: Int, _ value: Int) { bytes[at] = UInt8(value >> 8); bytes[at + 1] = UInt8(value & 0xFF) }
        func put32(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) { for index in 0..<4 { bytes[at + index] = UInt8((value >> (24 - 8 * UInt32(index))) & 0xFF) } }
        var bytes = [UInt8](repeating: 0, count: 2048 * 3)
        bytes.replaceSubrange(0..<12, with: Array("DVDVIDEO-VTS".utf8))
        put32(&bytes, 0xCC, 1)
        let table = 2048
        put16(&bytes, table, chains.count)
        var next = 8 + chains.count * 8
        for (index, chain) in chains.enumerated() {
            put32(&bytes, table + 8 + index * 8 + 4, UInt32(next))
            let pgc = table + next
            bytes[pgc + 2] = UInt8(chain.programs.count)
            bytes[pgc + 3] = UInt8(chain.cells.count)
            put16(&bytes, pgc + 0xE6, 0xEC)
            let playback = 0xEC + ((chain.programs.count + 1) & ~1)
            put16(&bytes, pgc + 0xE8, playback)
            for (position, cell) in chain.programs.enumerated() { bytes[pgc + 0xEC + position] = cell }
            for (position, cell) in chain.cells.enumerated() {
                let entry = pgc + playback + position * 24
                bytes[entry + 4] = bcd(cell.hours)
                bytes[entry + 5] = bcd(cell.minutes)
                bytes[entry + 6] = bcd(cell.seconds)
                bytes[entry + 7] = bcd(cell.frames) | 0x40
                put32(&bytes, entry + 8, cell.sector)
                put32(&bytes, entry + 0x14, cell.sector + 99)
            }
            next += playback + chain.cells.count * 24
        }
        return bytes
    }

    @Test("one title, three cells, programs at cells 1 and 3: chapters at 0 and after the first two cells")
    func oneTitle() {
        let bytes = Self.ifo([(programs: [1, 3], cells: [(0, 0, 1, 12, 0), (0, 0, 2, 0, 100), (0, 1, 0, 0, 300)])])
        #expect(DVDVideoIFO.chapterStarts(bytes) == [0, 3.48])
    }

    @Test("two titles in one set share the joined stream: each title's chapters fall where its cells are, cells counted once")
    func twoTitles() {
        let first: Cell = (0, 0, 10, 0, 0)
        let second: Cell = (0, 0, 5, 0, 500)
        let third: Cell = (0, 0, 7, 0, 800)
        let bytes = Self.ifo([(programs: [1], cells: [first, second]), (programs: [1, 2], cells: [second, third])])
        #expect(DVDVideoIFO.chapterStarts(bytes) == [0, 10, 15])
    }

    @Test("a set of several titles: each program chain with cells is a title of its own, its chapters on its own cells, a shared cell in each title that plays it")
    func titlesOfASet() throws {
        let first: Cell = (0, 0, 10, 0, 0)
        let second: Cell = (0, 0, 5, 0, 500)
        let third: Cell = (0, 0, 7, 0, 800)
        // Chain 2 has no cells (a recorder's deleted recording): no title; chain 3 plays the second cell again.
        let bytes = Self.ifo([(programs: [1], cells: [first, second]), (programs: [], cells: []), (programs: [1, 2, 3], cells: [third, second, first])])
        let layout = try #require(DVDVideoIFO.layout(bytes))
        #expect(layout.titles.map(\.number) == [1, 3])
        #expect(layout.titles[0].cells.map(\.firstSector) == [0, 500] && layout.titles[0].chapterStarts == [0])
        #expect(layout.titles[1].cells.map(\.firstSector) == [800, 500, 0], "the shared cells are in the second title too")
        #expect(layout.titles[1].chapterStarts == [0, 7, 12])
        #expect(layout.cells.map(\.firstSector) == [0, 500, 800], "the whole set still plays each cell once")

        let detail = layout.titles.map { DVDTitlesDetail.Title(number: $0.number, cells: $0.cells.map { $0.firstSector...$0.lastSector }, chapterStarts: $0.chapterStarts) }
        let text = DVDTitlesDetail.text(detail)
        #expect(text == "1:0-99,500-599@0.000;3:800-899,500-599,0-99@0.000,7.000,12.000")
        #expect(DVDTitlesDetail.titles(text) == detail)
        for malformed in ["", "1:0-99", "1:0-99@", "0:0-99@0.000", "1:0-99@0.000;1:5-9@0.000", "x:0-99@0.000", "1:9-2@0.000"] {
            #expect(DVDTitlesDetail.titles(malformed) == nil, "\(malformed)")
        }
    }

    @Test("cells played out of sector order: the layout keeps the play order, chapters fall where they play, and the detail round-trips")
    func outOfOrder() throws {
        let bytes = Self.ifo([(programs: [1, 2], cells: [(0, 0, 3, 0, 300), (0, 0, 2, 0, 0)])])
        let layout = try #require(DVDVideoIFO.layout(bytes))
        #expect(layout.cells.map(\.firstSector) == [300, 0] && layout.cells.map(\.lastSector) == [399, 99])
        #expect(layout.isOutOfSectorOrder)
        #expect(layout.chapterStarts == [0, 3])
        let ranges = layout.cells.map { $0.firstSector...$0.lastSector }
        #expect(DVDCellOrderDetail.ranges(DVDCellOrderDetail.text(ranges)) == ranges)
        #expect(DVDCellOrderDetail.ranges("5-2") == nil && DVDCellOrderDetail.ranges("") == nil)
        let inOrder = try #require(DVDVideoIFO.layout(Self.ifo([(programs: [1], cells: [(0, 0, 1, 0, 0), (0, 0, 1, 0, 100)])])))
        #expect(!inOrder.isOutOfSectorOrder)
    }

    @Test("not a VTS IFO, or cut short: no chapters, never a crash")
    func damaged() {
        let good = Self.ifo([(programs: [1], cells: [(0, 0, 1, 0, 0)])])
        #expect(DVDVideoIFO.chapterStarts(Array(good.prefix(2100))) == nil)
        #expect(DVDVideoIFO.chapterStarts(Array("DVDVIDEO-VMG".utf8) + good.dropFirst(12)) == nil)
        #expect(DVDVideoIFO.chapterStarts([]) == nil)
        for cut in stride(from: 0, to: good.count, by: 97) { _ = DVDVideoIFO.chapterStarts(Array(good.prefix(cut))) }
        #expect(DVDVideoIFO.isTitleSetInformation(path: "DVD/VIDEO_TS/VTS_03_0.BUP"))
        #expect(!DVDVideoIFO.isTitleSetInformation(path: "DVD/VIDEO_TS/VIDEO_TS.IFO"))
        #expect(DVDChapterDetail.starts(DVDChapterDetail.text([0, 1.8, 4.2])) == [0, 1.8, 4.2])
        #expect(DVDChapterDetail.starts("0,x") == nil)
    }
}
