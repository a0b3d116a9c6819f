import Foundation
import PipelineCore

/// A first look at what a disc holds, before anything is stored: which view its files can be read through, how
/// many files it has, and whether it is a DVD-Video (`VIDEO_TS/VIDEO_TS.IFO`). `uploader discs` decides from this
/// whether the disc goes in as files, as an image, or both.
public struct DiscContents: Sendable {
    public let view: ImageView
    /// Regular files (hard links included) in the view the files will be read through; nil for a disc kept whole
    /// (no view can be trusted to list them).
    public let files: Int?
    public let bytes: Int64
    public let isDVDVideo: Bool

    /// Whether the ISO 9660 view alone lacks files (the disc is read through UDF, or kept whole).
    public var isoViewIncomplete: Bool {
        if case .iso9660 = view { return false }
        return true
    }

    /// Lists the disc through ``ImageView``. Throws when neither view can be read at all (not a data disc,
    /// blank, damaged beyond its file system).
    public static func survey(_ path: String) async throws -> DiscContents {
        let image = RawPath(path)
        let view = try await ImageView.of(image)
        var paths: [String] = []
        var bytes: Int64 = 0
        switch view {
        case .iso9660:
            try await ISOImageReader.read(image) { entry, _ in
                switch entry.type {
                case .file, .hardlink:
                    paths.append(entry.path.string)
                    bytes += entry.size
                case .directory, .symlink, .other:
                    break
                }
            }
        case .udf(let udf, _):
            for file in udf.volume.files where file.kind == .file {
                paths.append(file.path.string)
                bytes += file.size
            }
        case .wholeImage:
            return DiscContents(view: view, files: nil, bytes: 0, isDVDVideo: false)
        }
        let dvd = paths.contains { $0.uppercased() == "VIDEO_TS/VIDEO_TS.IFO" }
        return DiscContents(view: view, files: paths.count, bytes: bytes, isDVDVideo: dvd)
    }
}
