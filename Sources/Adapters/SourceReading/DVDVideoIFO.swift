import Foundation

/// Reads what the transcoder needs from a DVD-Video title set's IFO (`VIDEO_TS/VTS_nn_0.IFO`, or its backup
/// `.BUP`): the cells in play order and where each chapter starts, in seconds from the start of the played
/// video, and each title's (program chain's) own cells and chapters. Pure parsing of the bytes; a file that is not
/// a VTS IFO, or is damaged, gives nil (the title set is still transcoded, in file order and without chapters).
///
/// Layout (DVD-Video VTSI, big-endian): "DVDVIDEO-VTS" at 0; the sector of the program chain table (VTS_PGCITI)
/// at 0xCC. The table: the number of program chains, then 8-byte entries whose second word is the chain's offset.
/// A chain: number of programs at 2, of cells at 3, offsets of the program map at 0xE6 and of the cell playback
/// table at 0xE8. A program starts at its entry cell; a cell's 24-byte playback entry holds its length (BCD
/// hh:mm:ss:ff, the frame rate in the top bits of ff) at 4, its first sector at 8 and its last at 0x14.
public enum DVDVideoIFO {
    /// A cell: the sectors it plays (counted from the start of part 1) and how long it lasts.
    public struct Cell: Sendable, Hashable {
        public var firstSector: UInt32
        public var lastSector: UInt32
        public var seconds: Double
    }

    /// What the transcoder needs of a title set: its cells in play order (each once: a cell several titles share
    /// is played once) and where the chapters start in that order, and the titles it holds.
    public struct TitleSetLayout: Sendable, Hashable {
        public var cells: [Cell]
        /// Chapter starts in seconds (sorted, distinct, the first at 0), on the cells played in `cells` order.
        public var chapterStarts: [Double]
        /// Every program chain with cells, in the order of the table: a recorder writes each recording as one.
        public var titles: [Title]

        /// Whether playing the cells means reading the parts out of their order (commercial discs may do this;
        /// recorders, camcorders and dvdauthor write cells in play order).
        public var isOutOfSectorOrder: Bool {
            zip(cells, cells.dropFirst()).contains { $0.firstSector > $1.firstSector }
        }
    }

    /// One title of a title set: a program chain with cells, played on its own.
    public struct Title: Sendable, Hashable {
        /// The chain's number in the title set's program chain table (1-based).
        public var number: Int
        /// The chain's cells in play order, each as often as the chain lists it (a cell other chains list too is
        /// in each of them).
        public var cells: [Cell]
        /// Chapter starts in seconds from the title's start (sorted, distinct, the first at 0): one per program.
        public var chapterStarts: [Double]
    }

    /// A program chain as the table holds it: its cells, and the cell each program starts at (0-based).
    struct Chain {
        var cells: [Cell]
        var programEntries: [Int]
    }

    /// Chapter starts in seconds, or nil when `bytes` is no readable VTS IFO.
    public static func chapterStarts(_ bytes: [UInt8]) -> [Double]? { layout(bytes)?.chapterStarts }

    /// The title set's cells, chapters and titles, or nil when `bytes` is no readable VTS IFO.
    public static func layout(_ bytes: [UInt8]) -> TitleSetLayout? {
        guard let chains = chains(bytes) else { return nil }
        var played: [Cell] = []
        var seen: Set<UInt32> = []
        for cell in chains.flatMap(\.cells) where seen.insert(cell.firstSector).inserted { played.append(cell) }
        // The played stream holds each cell once, in play order: a cell starts after the ones before it.
        var startOfSector: [UInt32: Double] = [:]
        var elapsed = 0.0
        for cell in played {
            startOfSector[cell.firstSector] = elapsed
            elapsed += cell.seconds
        }
        let programStartSectors = chains.flatMap { chain in chain.programEntries.map { chain.cells[$0].firstSector } }
        let titles = chains.enumerated().filter { !$0.element.cells.isEmpty }.map { index, chain in
            // A title plays its own cells: a program starts after the cells before its entry cell.
            let starts = chain.programEntries.map { entry in chain.cells[..<entry].reduce(0) { $0 + $1.seconds } }
            return Title(number: index + 1, cells: chain.cells, chapterStarts: milliseconds(starts))
        }
        return TitleSetLayout(cells: played, chapterStarts: milliseconds(programStartSectors.compactMap { startOfSector[$0] }), titles: titles)
    }

    /// Sorted, distinct, rounded to the millisecond, with 0 in front.
    static func milliseconds(_ starts: [Double]) -> [Double] {
        var distinct = Set(starts.map { ($0 * 1000).rounded() / 1000 })
        distinct.insert(0)
        return distinct.sorted()
    }

    /// The program chain table (VTS_PGCIT) read chain by chain, or nil when it is not all there.
    static func chains(_ bytes: [UInt8]) -> [Chain]? {
        guard bytes.count >= 0x100, Array(bytes[0..<12]) == Array("DVDVIDEO-VTS".utf8) else { return nil }
        guard let table = bytes.bigEndianUInt32(at: 0xCC).map({ Int($0) * 2048 }), let chainCount = bytes.bigEndianUInt16(at: table), chainCount > 0 else { return nil }
        var chains: [Chain] = []
        for chain in 0..<Int(chainCount) {
            guard let offset = bytes.bigEndianUInt32(at: table + 8 + chain * 8 + 4) else { return nil }
            let pgc = table + Int(offset)
            guard pgc + 0xEC <= bytes.count else { return nil }
            let programs = Int(bytes[pgc + 2])
            let cellCount = Int(bytes[pgc + 3])
            guard let mapOffset = bytes.bigEndianUInt16(at: pgc + 0xE6), let playbackOffset = bytes.bigEndianUInt16(at: pgc + 0xE8) else { return nil }
            var cells: [Cell] = []
            for index in 0..<cellCount {
                let entry = pgc + Int(playbackOffset) + index * 24
                guard entry + 24 <= bytes.count, let first = bytes.bigEndianUInt32(at: entry + 8), let last = bytes.bigEndianUInt32(at: entry + 0x14),
                      last >= first, let seconds = bcdTime(bytes, entry + 4) else { return nil }
                cells.append(Cell(firstSector: first, lastSector: last, seconds: seconds))
            }
            var entries: [Int] = []
            for program in 0..<programs {
                let at = pgc + Int(mapOffset) + program
                guard at < bytes.count else { return nil }
                let entryCell = Int(bytes[at])
                guard entryCell >= 1, entryCell <= cells.count else { return nil }
                entries.append(entryCell - 1)
            }
            chains.append(Chain(cells: cells, programEntries: entries))
        }
        return chains
    }

    /// hh:mm:ss:ff in BCD; the top two bits of ff give the frame rate (01: 25, 11: 29.97).
    static func bcdTime(_ bytes: [UInt8], _ at: Int) -> Double? {
        guard at + 4 <= bytes.count else { return nil }
        func bcd(_ value: UInt8) -> Double? {
            let high = value >> 4, low = value & 0x0F
            return high < 10 && low < 10 ? Double(high) * 10 + Double(low) : nil
        }
        guard let hours = bcd(bytes[at]), let minutes = bcd(bytes[at + 1]), let seconds = bcd(bytes[at + 2]),
              let frames = bcd(bytes[at + 3] & 0x3F) else { return nil }
        let rate = bytes[at + 3] >> 6 == 1 ? 25.0 : 30000.0 / 1001.0
        return hours * 3600 + minutes * 60 + seconds + frames / rate
    }

    /// Whether `path` names a title set's IFO or its backup: `VIDEO_TS/VTS_nn_0.IFO` / `.BUP` (without case).
    public static func isTitleSetInformation(path: String) -> Bool {
        let components = path.split(separator: "/")
        guard components.count >= 2, components[components.count - 2].uppercased() == "VIDEO_TS" else { return false }
        let name = components[components.count - 1].uppercased()
        return name.count == 12 && name.hasPrefix("VTS_") && (name.hasSuffix("_0.IFO") || name.hasSuffix("_0.BUP"))
    }
}
