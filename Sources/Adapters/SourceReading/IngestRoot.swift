import Foundation
import PipelineCore

/// What the user pointed the uploader at: a directory (a mounted disc, a drive) or an ISO image read in place.
public struct IngestRoot: Sendable, Hashable {
    /// The absolute, standardized path.
    public let path: String
    /// An ISO image file, read member by member without mounting.
    public let isImage: Bool

    /// Checks that `path` exists and is a directory or an ISO image; the error names the path and what to give.
    public static func resolve(_ path: String) async throws -> IngestRoot {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw IngestError(.cannotOpen, path: path, "no such file or directory")
        }
        let root = URL(fileURLWithPath: path).standardizedFileURL.path
        guard !isDirectory.boolValue else { return IngestRoot(path: root, isImage: false) }
        let classification = try await FileClassifier.classify(fileAt: RawPath(root))
        guard classification.kind == .discImage else {
            throw IngestError(.cannotOpen, path: path, "neither a directory nor an ISO image (give a directory, a mounted disc or an .iso file)")
        }
        return IngestRoot(path: root, isImage: true)
    }
}
