import Foundation

/// Reads an AVCHD playlist (`BDMV/PLAYLIST/nnnnn.MPL`, Blu-ray's `.mpls`): the clips (`BDMV/STREAM/nnnnn.MTS`) in
/// play order, and which of them continue the one before. A camcorder starts a new clip every 2 GB (FAT32) or
/// so and joins it to the previous one seamlessly (connection condition 5 or 6): those clips are one recording.
///
/// Layout (big-endian): "MPLS" and a version at 0; the PlayList's address at 8. The PlayList: length (4), reserved
/// (2), number of PlayItems (2), number of SubPaths (2), then the PlayItems, each a 2-byte length and that many
/// bytes: the clip's name (5 ASCII digits), its codec ("M2TS"), then 11 reserved bits, is_multi_angle (1 bit) and
/// connection_condition (4 bits).
public enum AVCHDPlaylist {
    public struct Item: Sendable, Hashable {
        /// "00001": the clip's file is `BDMV/STREAM/00001.MTS` (`.m2ts` on Blu-ray).
        public var clip: String
        /// Continues the previous item without a break (connection condition 5 or 6).
        public var continuesPrevious: Bool

        public init(clip: String, continuesPrevious: Bool) {
            self.clip = clip
            self.continuesPrevious = continuesPrevious
        }
    }

    /// The items, or nil when `bytes` is no readable playlist.
    public static func items(_ bytes: [UInt8]) -> [Item]? {
        guard bytes.count >= 40, Array(bytes[0..<4]) == Array("MPLS".utf8), let start = bytes.bigEndianUInt32(at: 8).map(Int.init),
              let count = bytes.bigEndianUInt16(at: start + 6) else { return nil }
        var items: [Item] = []
        var at = start + 10
        for _ in 0..<count {
            guard let length = bytes.bigEndianUInt16(at: at).map(Int.init), at + 2 + length <= bytes.count, length >= 11 else { return nil }
            let body = at + 2
            guard let clip = String(bytes: bytes[body..<(body + 5)], encoding: .ascii), clip.allSatisfy(\.isNumber),
                  let flags = bytes.bigEndianUInt16(at: body + 9) else { return nil }
            let condition = flags & 0x0F
            items.append(Item(clip: clip, continuesPrevious: !items.isEmpty && (condition == 5 || condition == 6)))
            at = body + length
        }
        return items
    }

    /// The recordings: runs of items that continue one another, each as its clips in order.
    public static func recordings(_ items: [Item]) -> [[String]] {
        var runs: [[String]] = []
        for item in items {
            if item.continuesPrevious, !runs.isEmpty { runs[runs.count - 1].append(item.clip) } else { runs.append([item.clip]) }
        }
        return runs
    }

    /// Whether `path` names an AVCHD or Blu-ray playlist: `BDMV/PLAYLIST/nnnnn.MPL` or `.mpls` (without case).
    public static func isPlaylist(path: String) -> Bool {
        let components = path.split(separator: "/")
        guard components.count >= 3, components[components.count - 2].uppercased() == "PLAYLIST",
              components[components.count - 3].uppercased() == "BDMV" else { return false }
        let name = components[components.count - 1].uppercased()
        return name.hasSuffix(".MPL") || name.hasSuffix(".MPLS")
    }

}
