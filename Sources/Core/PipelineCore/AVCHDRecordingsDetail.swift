/// How an AVCHD playlist's recordings travel from the uploader (which reads `BDMV/PLAYLIST/*.MPL`) to the
/// transcoder (which joins a recording's clips): `details.avchd_recordings` on the playlist's row, recordings
/// separated by ",", the clips of one recording by "+": "00000+00001,00002".
public enum AVCHDRecordingsDetail {
    public static let key = "avchd_recordings"

    public static func text(_ recordings: [[String]]) -> String {
        recordings.map { $0.joined(separator: "+") }.joined(separator: ",")
    }

    public static func recordings(_ text: String) -> [[String]] {
        text.split(separator: ",").map { $0.split(separator: "+").map(String.init) }.filter { !$0.isEmpty }
    }
}
