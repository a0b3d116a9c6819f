import Catalog
import Foundation
import PipelineCore

/// The files of a DVD-Video disc as the transcoder sees them, in its `VIDEO_TS` folder: `VIDEO_TS.VOB` and
/// `VTS_nn_0.VOB` are menus; `VTS_nn_1.VOB` … `VTS_nn_9.VOB` are the video of title set nn, cut into files of at
/// most 1 GiB. Joined byte for byte in part order they are one continuous MPEG program stream (the IFO's sector
/// addresses count from the start of part 1), so a title set is transcoded once, from all its parts.
public enum DVDVideo {
    public enum Role: Sendable, Hashable {
        case menu
        case titleSetPart(titleSet: Int, part: Int)
    }

    /// The role of a file by its path (names compared without case), or nil for anything that is not a VOB of a
    /// `VIDEO_TS` folder.
    public static func role(ofPath path: String) -> Role? {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard components.count >= 2, components[components.count - 2].uppercased() == "VIDEO_TS" else { return nil }
        let name = components[components.count - 1].uppercased()
        if name == "VIDEO_TS.VOB" { return .menu }
        let characters = Array(name)
        guard characters.count == 12, name.hasPrefix("VTS_"), name.hasSuffix(".VOB"), characters[6] == "_",
              let titleSet = Int(String(characters[4...5])), (1...99).contains(titleSet),
              let part = Int(String(characters[7])) else { return nil }
        return part == 0 ? .menu : .titleSetPart(titleSet: titleSet, part: part)
    }

    /// Every possible part of title set `titleSet` beside `path` (parts 1 to 9).
    public static func partPaths(besides path: String, titleSet: Int) -> [String] {
        let directory = (path as NSString).deletingLastPathComponent
        return (1...9).map { directory + "/" + String(format: "VTS_%02d_%d.VOB", titleSet, $0) }
    }

    /// "VTS_01": the name of a title set's joined transcode (plus the container's extension).
    public static func titleName(titleSet: Int) -> String { String(format: "VTS_%02d", titleSet) }

    /// "VTS_01_title02": the name of the transcode of title (program chain) 2 of title set 1, when the set holds
    /// several titles (plus the container's extension).
    public static func titleName(titleSet: Int, title: Int) -> String { String(format: "VTS_%02d_title%02d", titleSet, title) }

    /// Whether every title's cells lie within the joined parts (`size` bytes): an IFO that does not fit the parts
    /// is not trusted.
    public static func titlesFit(_ titles: [DVDTitlesDetail.Title], size: Int64) -> Bool {
        titles.allSatisfy { $0.cells.allSatisfy { (Int64($0.upperBound) + 1) * 2048 <= size } }
    }

    /// What to do with one claimed part, given its title set as the catalog has it: parts 1 to the highest one
    /// present are expected (a part missing after the last one present cannot be known, and is not a hole).
    public static func decide(claimedID: Int64, titleSet: Int, members: [GroupMember], uploadFinished: Bool) -> JoinedGroup.Decision {
        let parts = members.compactMap { member -> Int? in
            guard case .titleSetPart(titleSet, let part)? = role(ofPath: member.path) else { return nil }
            return part
        }
        let expected = Array(partPaths(besides: members.first?.path ?? "", titleSet: titleSet).prefix(parts.max() ?? 0))
        return JoinedGroup.decide(
            claimedID: claimedID, name: "DVD title set \(titleName(titleSet: titleSet))", expected: expected, members: members, uploadFinished: uploadFinished)
    }
}
