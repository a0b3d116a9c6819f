import Catalog
import PipelineCore
import Testing
import TranscodeStep

/// Which VOB is what on a DVD-Video disc, and what the transcoder does with a claimed part given its title set.
@Suite("DVD-Video title sets")
struct DVDVideoTests {
    @Test("roles by path: title set parts, menus, case, and files outside VIDEO_TS")
    func roles() {
        #expect(DVDVideo.role(ofPath: "DVD 12/VIDEO_TS/VTS_01_1.VOB") == .titleSetPart(titleSet: 1, part: 1))
        #expect(DVDVideo.role(ofPath: "VIDEO_TS/vts_12_3.vob") == .titleSetPart(titleSet: 12, part: 3))
        #expect(DVDVideo.role(ofPath: "VIDEO_TS/VTS_01_0.VOB") == .menu)
        #expect(DVDVideo.role(ofPath: "VIDEO_TS/VIDEO_TS.VOB") == .menu)
        #expect(DVDVideo.role(ofPath: "backup/VTS_01_1.VOB") == nil, "a VOB outside a VIDEO_TS folder is just a video")
        #expect(DVDVideo.role(ofPath: "VIDEO_TS/VTS_01_1.IFO") == nil)
        #expect(DVDVideo.role(ofPath: "VIDEO_TS/VTS_00_1.VOB") == nil)
        #expect(DVDVideo.role(ofPath: "VIDEO_TS/VTS_1_1.VOB") == nil)
        #expect(DVDVideo.partPaths(besides: "d/VIDEO_TS/VTS_02_4.VOB", titleSet: 2).first == "d/VIDEO_TS/VTS_02_1.VOB")
        #expect(DVDVideo.partPaths(besides: "d/VIDEO_TS/VTS_02_4.VOB", titleSet: 2).count == 9)
        #expect(DVDVideo.titleName(titleSet: 1) == "VTS_01" && DVDVideo.titleName(titleSet: 3, title: 12) == "VTS_03_title12")
        #expect(DVDVideo.role(ofPath: "VIDEO_TS/VTS_01_title01.mkv") == nil, "a title's transcode is no part of the disc")
    }

    @Test("a set's titles are trusted only when every cell lies within the joined parts")
    func titlesFit() {
        let titles = [DVDTitlesDetail.Title(number: 1, cells: [0...9], chapterStarts: [0]), DVDTitlesDetail.Title(number: 2, cells: [10...19, 0...9], chapterStarts: [0])]
        #expect(DVDVideo.titlesFit(titles, size: 20 * 2048))
        #expect(!DVDVideo.titlesFit(titles, size: 20 * 2048 - 1))
    }

    static func part(_ number: Int, id: Int64, state: String = "staged", readable: Bool = true) -> GroupMember {
        GroupMember(
            fileID: id, path: "VIDEO_TS/VTS_01_\(number).VOB", state: state, stagingKey: readable ? "k\(id)" : nil, sizeBytes: 2048,
            hash: readable ? String(repeating: "a", count: 64) : nil)
    }

    @Test("the lowest part leads once the upload is finished, joining the parts in order; the others wait for it, then go on as they are")
    func leaderAndPassengers() {
        let parts = [Self.part(3, id: 30), Self.part(1, id: 10), Self.part(2, id: 20)]
        #expect(DVDVideo.decide(claimedID: 10, titleSet: 1, members: parts, uploadFinished: true) == .join([parts[1], parts[2], parts[0]]))
        guard case .wait = DVDVideo.decide(claimedID: 10, titleSet: 1, members: parts, uploadFinished: false) else {
            Issue.record("the leader must wait while the upload runs: a part may still come")
            return
        }
        guard case .wait = DVDVideo.decide(claimedID: 20, titleSet: 1, members: parts, uploadFinished: true) else {
            Issue.record("a part must wait while the leader is staged")
            return
        }
        let led = [Self.part(1, id: 10, state: "transcoded"), Self.part(2, id: 20)]
        #expect(DVDVideo.decide(claimedID: 20, titleSet: 1, members: led, uploadFinished: true) == .passOn(leaderID: 10))
        let failed = [Self.part(1, id: 10, state: "failed"), Self.part(2, id: 20)]
        #expect(DVDVideo.decide(claimedID: 20, titleSet: 1, members: failed, uploadFinished: true) == .passOn(leaderID: 10))
    }

    @Test("a part still in a spool (read, not sent) is on its way, not a hole: the leader waits for it, and a part waits for a spooled leader")
    func spooledPartsAreWaitedFor() {
        // Parts in the state `spooled` have no staging key yet: before the fix they read as a hole and every part was kept raw.
        let secondSpooled = [Self.part(1, id: 10), Self.part(2, id: 20, state: "spooled", readable: false)]
        guard case .wait(_, let why) = DVDVideo.decide(claimedID: 10, titleSet: 1, members: secondSpooled, uploadFinished: true) else {
            Issue.record("the leader must wait for a part that is still in a spool")
            return
        }
        #expect(why.contains("VTS_01_2.VOB") && why.contains("spool"), "\(why)")
        let leaderSpooled = [Self.part(1, id: 10, state: "spooled", readable: false), Self.part(2, id: 20)]
        guard case .wait = DVDVideo.decide(claimedID: 20, titleSet: 1, members: leaderSpooled, uploadFinished: true) else {
            Issue.record("a part must wait for a leader that is still in a spool, not be passed on before the leader joins it")
            return
        }
        // Once sent, the same set joins.
        let sent = [Self.part(1, id: 10), Self.part(2, id: 20)]
        #expect(DVDVideo.decide(claimedID: 10, titleSet: 1, members: sent, uploadFinished: true) == .join(sent))
    }

    @Test("a set with a hole is never joined: a missing part or an unreadable one keeps every part raw")
    func holesKeepRaw() {
        let gap = [Self.part(1, id: 10), Self.part(3, id: 30)]
        guard case .keepRaw(let reasons) = DVDVideo.decide(claimedID: 10, titleSet: 1, members: gap, uploadFinished: true) else {
            Issue.record("a missing part 2 must not be joined over")
            return
        }
        #expect(reasons.first == "DVD title set VTS_01: VTS_01_2.VOB is missing", "\(reasons)")

        let unreadable = [Self.part(1, id: 10), Self.part(2, id: 20, state: "unreadable", readable: false)]
        guard case .keepRaw(let why) = DVDVideo.decide(claimedID: 10, titleSet: 1, members: unreadable, uploadFinished: true) else {
            Issue.record("an unreadable part must not be joined over")
            return
        }
        #expect(why.first?.hasPrefix("DVD title set VTS_01: VTS_01_2.VOB could not be read") == true, "\(why)")

        // Part 1 unreadable: part 2 leads, and finds the hole before it.
        let firstLost = [Self.part(1, id: 10, state: "unreadable", readable: false), Self.part(2, id: 20)]
        guard case .keepRaw = DVDVideo.decide(claimedID: 20, titleSet: 1, members: firstLost, uploadFinished: true) else {
            Issue.record("a set whose first part is lost must not be joined")
            return
        }
    }
}
