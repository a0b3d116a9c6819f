import Foundation

/// Where an AVCHD (or Blu-ray) clip sits: `<root>/BDMV/STREAM/nnnnn.MTS` (`.m2ts`), its playlists in
/// `<root>/BDMV/PLAYLIST`.
public struct AVCHDClip: Sendable, Hashable {
    /// "<root>/BDMV".
    public var bdmvDirectory: String
    /// "00001".
    public var clip: String
    /// The file's extension as the disc spells it ("MTS", "m2ts").
    public var fileExtension: String

    public var streamDirectory: String { bdmvDirectory + "/STREAM" }
    public var playlistDirectory: String { bdmvDirectory + "/PLAYLIST" }

    public init?(path: String) {
        let components = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard components.count >= 3, components[components.count - 2].uppercased() == "STREAM",
              components[components.count - 3].uppercased() == "BDMV" else { return nil }
        let name = components[components.count - 1] as NSString
        let ext = name.pathExtension
        let clip = name.deletingPathExtension
        guard ["MTS", "M2TS"].contains(ext.uppercased()), clip.count == 5, clip.allSatisfy(\.isNumber) else { return nil }
        bdmvDirectory = components.dropLast(2).joined(separator: "/")
        self.clip = clip
        fileExtension = ext
    }

    /// The stream directory as this clip's path spells it (the case of the disc).
    func path(ofClip clip: String, besides path: String) -> String {
        (path as NSString).deletingLastPathComponent + "/" + clip + "." + fileExtension
    }
}
