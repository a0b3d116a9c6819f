import Catalog
import Foundation

/// Files that are one video only when joined in order: a DVD title set's VOB parts, an AVCHD recording's clips.
/// The first file the transcoder can claim leads: once the upload has finished it joins them all and transcodes
/// the whole; the others wait for it, then go to the archiver as they are. A hole (a file missing, unreadable or no
/// longer in staging) is never joined over: every file is kept raw instead.
public enum JoinedGroup {
    /// How long a file waits for an upload that has not finished: longer than the 60 s within which `--once` still
    /// waits for a retry, so `transcoder run --once` ends (the file stays staged) when an upload was interrupted and
    /// is not running; a running worker looks again after it.
    public static let uploadWait: Duration = .seconds(90)

    public enum Decision: Sendable, Hashable {
        /// Not yet: the leader has not finished, or the upload is still running (a file may still come).
        case wait(Duration, because: String)
        /// Another file leads the group: this one is archived as it is.
        case passOn(leaderID: Int64)
        /// The group cannot be joined without a hole: every file is archived as it is.
        case keepRaw([String])
        /// This file leads: join these files, in order, and transcode them as one video.
        case join([GroupMember])
    }

    /// `expected`: every file of the group in play order (paths, compared without case); `members`: the rows the
    /// catalog has for them (others are ignored).
    public static func decide(claimedID: Int64, name: String, expected: [String], members: [GroupMember], uploadFinished: Bool) -> Decision {
        let position = Dictionary(expected.enumerated().map { ($1.lowercased(), $0) }) { first, _ in first }
        let ordered = members.compactMap { member in position[member.path.lowercased()].map { ($0, member) } }.sorted { $0.0 < $1.0 }
        guard let leader = ordered.first(where: { $0.1.state != "unreadable" })?.1 else {
            return .keepRaw(["\(name): none of its files could be read"])
        }
        guard leader.fileID == claimedID else {
            // A spooled leader is read but not sent yet (`uploader send` may take hours): it will lead once staged.
            if leader.state == "spooled" {
                return .wait(uploadWait, because: "\(leader.path) leads \(name) and is still in a spool, not sent yet")
            }
            if ["staged", "transcoding"].contains(leader.state) {
                // The leader itself waits for the upload while it runs: no sooner than it.
                return .wait(uploadFinished ? .seconds(10) : uploadWait, because: "\(leader.path) leads \(name) and has not finished")
            }
            return .passOn(leaderID: leader.fileID)
        }
        guard uploadFinished else { return .wait(uploadWait, because: "the upload has not finished; files of \(name) may still come") }
        // A finished upload into a spool still has parts on their way: never call them a hole and keep all raw.
        let spooled = ordered.filter { $0.1.state == "spooled" }.map { ($0.1.path as NSString).lastPathComponent }
        if !spooled.isEmpty {
            return .wait(uploadWait, because: "\(spooled.joined(separator: ", ")) of \(name) still in a spool, not sent yet")
        }
        let present = Set(ordered.map(\.0))
        var problems = expected.enumerated().filter { !present.contains($0.offset) }.map {
            "\(name): \(($0.element as NSString).lastPathComponent) is missing"
        }
        for (_, member) in ordered where member.stagingKey == nil || member.hash == nil {
            problems.append("\(name): \((member.path as NSString).lastPathComponent) could not be read or is no longer in staging (\(member.state))")
        }
        if !problems.isEmpty { return .keepRaw(problems + ["its files are archived as they are, without a joined transcode"]) }
        return .join(ordered.map(\.1))
    }
}
