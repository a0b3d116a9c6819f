import Catalog
import Foundation

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

    /// What to do with one claimed part, given its title set as the catalog has it.
    public enum Decision: Sendable, Hashable {
        /// Not yet: the part that transcodes the set has not finished, or the disc's upload is still running.
        case wait(Duration, because: String)
        /// Another part transcodes the set: this one is archived as it is.
        case passOn(leaderID: Int64)
        /// The set cannot be joined without a hole (a part unreadable or missing): every part is archived as it is.
        case keepRaw([String])
        /// This part leads: join these parts, in order, and transcode them as one video.
        case join([GroupMember])
    }

    public static func decide(claimedID: Int64, titleSet: Int, members: [GroupMember], uploadFinished: Bool) -> Decision {
        let name = titleName(titleSet: titleSet)
        let numbered = members.compactMap { member -> (part: Int, member: GroupMember)? in
            guard case .titleSetPart(titleSet, let part)? = role(ofPath: member.path) else { return nil }
            return (part, member)
        }.sorted { $0.part < $1.part }
        // The lowest part the transcoder can claim leads (an unreadable row is never claimed).
        guard let leader = numbered.first(where: { $0.member.state != "unreadable" }) else {
            return .keepRaw(["DVD title set \(name): none of its parts could be read"])
        }
        guard leader.member.fileID == claimedID else {
            if ["staged", "transcoding"].contains(leader.member.state) {
                return .wait(.seconds(10), because: "part \(leader.part) of title set \(name) transcodes the set and has not finished")
            }
            return .passOn(leaderID: leader.member.fileID)
        }
        guard uploadFinished else { return .wait(.seconds(30), because: "the upload of the disc has not finished; parts may still come") }
        var problems: [String] = []
        for (expected, entry) in zip(1..., numbered) where entry.part != expected {
            problems.append("DVD title set \(name): part \(expected) (\(String(format: "VTS_%02d_%d.VOB", titleSet, expected))) is missing")
            break
        }
        for entry in numbered where entry.member.stagingKey == nil || entry.member.hash == nil {
            problems.append("DVD title set \(name): part \(entry.part) could not be read or is no longer in staging (\(entry.member.state))")
        }
        if !problems.isEmpty { return .keepRaw(problems + ["its parts are archived as they are, without a joined transcode"]) }
        return .join(numbered.map(\.member))
    }
}
