import Catalog
import Foundation
import PipelineCore
import Testing
import TestSupport
import SystemIO

/// A DVD title set holding two titles, as a DVD recorder writes its recordings (authored here with the ffmpeg CLI,
/// spumux and dvdauthor: two program chains in one `<titles>`): one transcode per title, each from its own cells,
/// with its own chapters, every audio track and the subtitles; the disc's files are archived as they are.
@Suite("transcoder worker: a DVD title set with several titles")
struct DVDTitlesWorkerTests {
    /// What the authored title set holds.
    struct Disc {
        /// The title set's VOB before it was cut into VTS_01_1.VOB and VTS_01_2.VOB.
        var whole: [UInt8]
        /// Title 1: red, 3 s, chapters at 0 and 1.5 s. Title 2: blue for 4 s (chapters at 0 and 2 s), then red again
        /// (the same cells as title 1, which dvdauthor stores once): 7 s, four chapters.
        static let lengths = [3.0, 7.0]
        static let chapterCounts = [2, 4]
    }

    /// Authors `<directory>/DVD/VIDEO_TS` with the two titles (PAL 16:9 MPEG-2; AC-3 English and MP2 German; one
    /// subpicture stream), then cuts VTS_01_1.VOB in two at a sector boundary, inside title 2.
    static func makeDisc(in directory: String, work: String) async throws -> Disc {
        func run(_ arguments: [String], environment: [String: String] = [:]) async throws {
            let result = try await Subprocess.run("/usr/bin/env", environment.map { "\($0.key)=\($0.value)" } + arguments)
            #expect(result.status == 0, "\(arguments.first ?? ""): \(result.output.suffix(1500))")
        }
        let image = work + "/line.png"
        try await run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=white:s=320x64",
                       "-frames:v", "1", "-pix_fmt", "rgba", image])
        for (colour, seconds) in [("red", 3), ("blue", 4)] {
            let clip = work + "/\(colour).mpg"
            try await run([
                "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=\(colour):size=720x576:rate=25",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000",
                "-map", "0:v", "-map", "1:a", "-map", "2:a", "-t", "\(seconds)", "-target", "pal-dvd", "-c:a:0", "ac3", "-c:a:1", "mp2",
                "-b:a", "192k", "-ac", "2", "-aspect", "16:9", clip,
            ])
            let spu = work + "/\(colour).xml"
            try """
                <subpictures><stream>
                  <spu start="00:00:00.50" end="00:00:01.50" image="\(image)" xoffset="200" yoffset="480"/>
                </stream></subpictures>
                """.write(toFile: spu, atomically: true, encoding: .utf8)
            try await run(["sh", "-c", "spumux -m dvd '\(spu)' < '\(clip)' > '\(work)/\(colour)-sub.mpg'"])
        }
        let disc = directory + "/DVD"
        let xml = work + "/dvd.xml"
        try """
            <dvdauthor dest="\(disc)">
              <vmgm/>
              <titleset>
                <titles>
                  <video format="pal" aspect="16:9"/>
                  <audio lang="en"/><audio lang="de"/>
                  <subpicture lang="en"/>
                  <pgc><vob file="\(work)/red-sub.mpg" chapters="0,1.5"/></pgc>
                  <pgc><vob file="\(work)/blue-sub.mpg" chapters="0,2"/><vob file="\(work)/red-sub.mpg" chapters="0,1.5"/></pgc>
                </titles>
              </titleset>
            </dvdauthor>
            """.write(toFile: xml, atomically: true, encoding: .utf8)
        try await run(["dvdauthor", "-x", xml], environment: ["VIDEO_FORMAT": "PAL"])

        let first = disc + "/VIDEO_TS/VTS_01_1.VOB"
        let whole = Array(try Data(contentsOf: URL(fileURLWithPath: first)))
        let cut = (whole.count / 2048 * 3 / 4) * 2048
        try Data(whole[..<cut]).write(to: URL(fileURLWithPath: first))
        try Data(whole[cut...]).write(to: URL(fileURLWithPath: disc + "/VIDEO_TS/VTS_01_2.VOB"))
        return Disc(whole: whole)
    }

    /// The two title rows, part 1 and part 2, by path.
    static func titleRows(_ harness: PipelineHarness) async throws -> (titles: [PipelineHarness.Row], first: PipelineHarness.Row, second: PipelineHarness.Row) {
        let rows = try await harness.rows()
        let titles = rows.filter { $0.path.hasPrefix("DVD/VIDEO_TS/VTS_01_title") }
        let first = try #require(rows.first { $0.path == "DVD/VIDEO_TS/VTS_01_1.VOB" })
        let second = try #require(rows.first { $0.path == "DVD/VIDEO_TS/VTS_01_2.VOB" })
        return (titles, first, second)
    }

    @Test("two titles in one title set: VTS_01_title01.mkv and VTS_01_title02.mkv, each its own length, chapters, both audio tracks and the subtitles, a shared cell in both; every disc file comes back byte for byte")
    func oneFilePerTitle() async throws {
        try await PipelineHarness.with(.file) { harness in
            let disc = try await Self.makeDisc(in: harness.source.path, work: harness.work.path)
            let originals = try DVDVideoWorkerTests.files(under: harness.source.path)
            let upload = try await harness.upload(label: "Recorder")
            #expect(upload.status == 0, "\(upload.output)")
            let recorded = try await harness.scalar("SELECT details->>'dvd_titles' FROM objectstoragefiles WHERE path = 'DVD/VIDEO_TS/VTS_01_0.IFO'", as: String.self)
            let titles = try #require(recorded.flatMap(DVDTitlesDetail.titles), "\(String(describing: recorded))")
            #expect(titles.map(\.number) == [1, 2] && Array(titles[1].cells.suffix(titles[0].cells.count)) == titles[0].cells, "\(titles)")

            let rows = try await DVDVideoWorkerTests.transcodeAndArchive(harness)
            #expect(!rows.contains { $0.path.hasPrefix("DVD/VIDEO_TS/VTS_01.") }, "no transcode of the whole set: \(rows.map(\.path))")
            let (titleRows, first, second) = try await Self.titleRows(harness)
            #expect(titleRows.map(\.path) == ["DVD/VIDEO_TS/VTS_01_title01.mkv", "DVD/VIDEO_TS/VTS_01_title02.mkv"], "\(rows.map(\.path))")
            for (number, row) in titleRows.enumerated() {
                #expect(row.kind == "regular")
                #expect(try await harness.scalar("SELECT (details->>'transcode_of')::bigint FROM objectstoragefiles WHERE id = \(row.id)", as: Int64.self) == first.id)
                #expect(try await harness.scalar("SELECT (details->>'dvd_title')::int FROM objectstoragefiles WHERE id = \(row.id)", as: Int.self) == number + 1)
            }
            try await Self.expectTitleIDs(harness, on: first, titleRows)
            #expect(try await harness.scalar("SELECT details ? 'kept_raw' FROM objectstoragefiles WHERE id = \(first.id)", as: Bool.self) == false)
            #expect(try await harness.scalar("SELECT (details->>'dvd_title_set_of')::bigint FROM objectstoragefiles WHERE id = \(second.id)", as: Int64.self) == first.id)
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty, "raw or transcoded copies left in staging")

            // The way back: every file of the disc byte for byte, and each title's transcode beside them.
            let restored = try await DVDVideoWorkerTests.restore(harness, source: "Recorder", expecting: originals)
            let joinedParts = (restored["Recorder/DVD/VIDEO_TS/VTS_01_1.VOB"] ?? []) + (restored["Recorder/DVD/VIDEO_TS/VTS_01_2.VOB"] ?? [])
            #expect(joinedParts == disc.whole, "the two parts are the title set's VOB cut in two")
            for (index, title) in titles.enumerated() {
                let name = String(format: "VTS_01_title%02d.mkv", title.number)
                let transcode = try #require(restored["Recorder/DVD/VIDEO_TS/" + name], "\(restored.keys.sorted())")
                let copy = harness.work.path + "/" + name
                _ = FileManager.default.createFile(atPath: copy, contents: Data(transcode))
                try await Self.expectTitle(copy, length: Disc.lengths[index], chapters: title.chapterStarts)
                #expect(title.chapterStarts.count == Disc.chapterCounts[index], "\(title.chapterStarts)")
            }
            // Title 2 plays blue, then the cells it shares with title 1: red.
            let second2 = harness.work.path + "/VTS_01_title02.mkv"
            let start = try await DVDVideoWorkerTests.colour(of: second2, at: 1)
            let end = try await DVDVideoWorkerTests.colour(of: second2, at: 6)
            #expect(start.count == 3 && start[1] > start[2], "title 2 starts blue: \(start)")
            #expect(end.count == 3 && end[2] > end[1], "and ends red (the shared cells): \(end)")
        }
    }

    @Test("killed (SIGKILL) between two titles: the catalog holds part 1 leased and title 1 on its way, nothing more; the next run transcodes title 2 only, no row twice, everything comes back")
    func killedBetweenTitles() async throws {
        try await PipelineHarness.with(.file) { harness in
            _ = try await Self.makeDisc(in: harness.source.path, work: harness.work.path)
            let originals = try DVDVideoWorkerTests.files(under: harness.source.path)
            #expect(try await harness.upload(label: "Killed").status == 0)
            let killed = try await Program.run(
                "transcoder", ["run", "--once", "--profile", "h264", "--lease-seconds", "10", "--poll-seconds", "0.2"],
                environment: harness.environment.merging(["BACKUP_TRANSCODER_CRASH_AFTER_TITLES": "1"]) { $1 })
            #expect(killed.status == 128 + SIGKILL, "the transcoder was killed after title 1: \(killed.output.suffix(2000))")

            var (titleRows, first, second) = try await Self.titleRows(harness)
            #expect(titleRows.map(\.path) == ["DVD/VIDEO_TS/VTS_01_title01.mkv"] && titleRows.allSatisfy { $0.state == "staged" }, "\(titleRows.map { ($0.path, $0.state) })")
            #expect(first.state == "transcoding" && second.state == "staged", "part 1 still leased by the dead worker: \(first.state), \(second.state)")
            let titleOne = try #require(titleRows.first)
            // The archiver takes title 1 meanwhile; the source is not archived while part 1 is not.
            #expect(try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]).status == 0)
            #expect(try await harness.rows().first { $0.id == titleOne.id }?.state == "archived")
            #expect(try await ArchivePromiseTests.sourceState(harness, "Killed") != "archived")

            // Once the dead worker's lease has run out, the next run takes part 1 over and does title 2 only.
            let resumed = try await harness.transcodeOnce()
            #expect(resumed.status == 0, "\(resumed.output.suffix(3000))")
            #expect(resumed.output.contains("resuming a title set"), "\(resumed.output.suffix(3000))")
            #expect(resumed.output.components(separatedBy: "title transcoded").count == 2, "one title transcoded on resuming: \(resumed.output.suffix(3000))")
            #expect(try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]).status == 0)

            (titleRows, first, second) = try await Self.titleRows(harness)
            #expect(titleRows.map(\.path) == ["DVD/VIDEO_TS/VTS_01_title01.mkv", "DVD/VIDEO_TS/VTS_01_title02.mkv"], "no title twice: \(titleRows.map(\.path))")
            #expect(titleRows.first?.id == titleOne.id && titleRows.allSatisfy { $0.version == 1 })
            let rows = try await harness.rows()
            #expect(rows.allSatisfy { ["archived", "duplicate"].contains($0.state) }, "\(rows.map { ($0.path, $0.state, $0.error) })")
            try await Self.expectTitleIDs(harness, on: first, titleRows)
            #expect(try await ArchivePromiseTests.sourceState(harness, "Killed") == "archived")
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty, "raw or transcoded copies left in staging")

            let restored = try await DVDVideoWorkerTests.restore(harness, source: "Killed", expecting: originals)
            for (index, name) in ["VTS_01_title01.mkv", "VTS_01_title02.mkv"].enumerated() {
                let transcode = try #require(restored["Killed/DVD/VIDEO_TS/" + name], "\(restored.keys.sorted())")
                let copy = harness.work.path + "/" + name
                _ = FileManager.default.createFile(atPath: copy, contents: Data(transcode))
                try await Self.expectTitle(copy, length: Disc.lengths[index], chapters: nil)
            }
        }
    }

    @Test("a title that fails its checks gets no transcode and is listed as kept raw; the other title is transcoded; the disc's files are archived as they are")
    func damagedTitleKeptRaw() async throws {
        try await PipelineHarness.with(.file) { harness in
            let disc = try await Self.makeDisc(in: harness.source.path, work: harness.work.path)
            // Garbage in the middle of title 2's own (blue) cells, which title 1 does not play.
            // Title 2's first cell: program chain 2's first cell playback entry (first sector at 8).
            let ifo = Array(try Data(contentsOf: URL(fileURLWithPath: harness.source.path + "/DVD/VIDEO_TS/VTS_01_0.IFO")))
            func u32(_ at: Int) -> Int { ifo[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
            let table = u32(0xCC) * 2048
            let chain = table + u32(table + 8 + 8 + 4)
            let blue = u32(chain + (Int(ifo[chain + 0xE8]) << 8 | Int(ifo[chain + 0xE9])) + 8)
            let firstPart = harness.source.path + "/DVD/VIDEO_TS/VTS_01_1.VOB"
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: firstPart)))
            let from = (blue + 10) * 2048
            #expect(blue > 0 && from + 40 * 2048 < bytes.count, "blue's cells lie in part 1 (sector \(blue), \(bytes.count) bytes of \(disc.whole.count))")
            bytes.replaceSubrange(from..<(from + 40 * 2048), with: PipelineHarness.bytes(count: 40 * 2048, seed: 7))
            try Data(bytes).write(to: URL(fileURLWithPath: firstPart))
            let originals = try DVDVideoWorkerTests.files(under: harness.source.path)

            #expect(try await harness.upload(label: "Damaged").status == 0)
            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output.suffix(3000))")
            #expect(try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]).status == 0)

            let (titleRows, first, _) = try await Self.titleRows(harness)
            #expect(titleRows.map(\.path) == ["DVD/VIDEO_TS/VTS_01_title01.mkv"], "\(titleRows.map(\.path))")
            let reasons = try #require(try await harness.scalar("SELECT (details->'kept_raw')::text FROM objectstoragefiles WHERE id = \(first.id)", as: String.self))
            #expect(reasons.contains("title 2 (VTS_01_title02)"), "\(reasons)")
            let rows = try await harness.rows()
            #expect(rows.allSatisfy { ["archived", "duplicate"].contains($0.state) }, "\(rows.map { ($0.path, $0.state, $0.error) })")
            let restored = try await DVDVideoWorkerTests.restore(harness, source: "Damaged", expecting: originals)
            #expect(restored["Damaged/DVD/VIDEO_TS/VTS_01_title01.mkv"] != nil)
        }
    }

    /// One video, both audio tracks (AC-3 and MPEG), the subtitles, the title's length within 0.3 s, and (when
    /// given) chapters where the IFO says.
    static func expectTitle(_ path: String, length: Double, chapters: [Double]?) async throws {
        try await DVDVideoWorkerTests.expectTranscode(path, audioTracks: 2, length: (length - 0.3)...(length + 0.3), chapters: chapters)
    }

    /// Part 1 names the titles' rows, in title order.
    static func expectTitleIDs(_ harness: PipelineHarness, on first: PipelineHarness.Row, _ titles: [PipelineHarness.Row]) async throws {
        let ids = titles.map { "\($0.id)::bigint" }.joined(separator: ", ")
        #expect(try await harness.scalar(
            "SELECT details->'transcode_file_ids' = jsonb_build_array(\(ids)) FROM objectstoragefiles WHERE id = \(first.id)", as: Bool.self) == true,
            "part 1's details.transcode_file_ids")
    }
}
