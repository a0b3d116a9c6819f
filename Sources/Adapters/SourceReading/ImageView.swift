import Foundation
import PipelineCore

/// Which view of an image its files are read through.
public enum ImageView: Sendable {
    /// The ISO 9660 tree (with Rock Ridge or Joliet) through libarchive: the image has no UDF, or every UDF file
    /// is in the ISO 9660 view with the same size.
    case iso9660
    /// The UDF tree, because the ISO 9660 view lacks files or holds them with other sizes (`note` says which).
    case udf(UDFImage, note: String)
    /// Neither view can be trusted to hold every file: the image is stored whole as one `disc_image` file.
    case wholeImage(note: String)
}

extension ImageView {
    /// Decides how an image is read: see ``ImageView``.
    public static func of(_ image: RawPath) async throws -> ImageView {
        guard try await UDFImage.hasUDF(image) else { return .iso9660 }
        let udf: UDFImage
        do {
            udf = try await UDFImage.open(image)
        } catch let error as IngestError where error.code == .unreadableUDF {
            return .wholeImage(note: "kept whole as one disc image, because its UDF file system cannot be read (\(error.message)) and its ISO 9660 view may lack files")
        }
        var isoView: [RawPath: ISOEntry] = [:]
        do {
            try await ISOImageReader.read(image) { entry, _ in isoView[entry.path] = entry }
        } catch let error as IngestError where error.code == .archiveFailed {
            return .udf(udf, note: "read through UDF: its ISO 9660 view cannot be read (\(error.message))")
        }
        let gaps = isoViewGaps(udf: udf.volume.files, iso: isoView)
        if gaps.missing.isEmpty { return .iso9660 }
        let shown = gaps.missing.prefix(3).joined(separator: "; ") + (gaps.missing.count > 3 ? "; …" : "")
        guard gaps.onlyInISO.isEmpty else {
            return .wholeImage(note: "kept whole as one disc image, because neither view holds every file: \(gaps.missing.count) UDF files are not in its ISO 9660 view (\(shown)) and \(gaps.onlyInISO.count) ISO 9660 files are not in UDF (\(gaps.onlyInISO.prefix(3).joined(separator: "; ")))")
        }
        return .udf(udf, note: "read through UDF: \(gaps.missing.count) of its files are missing from its ISO 9660 view or have another size there (\(shown))")
    }

    /// The UDF files the ISO 9660 view lacks or holds with another size (for example a file over 4 GiB, which ISO
    /// 9660 levels 1 and 2 record with its size modulo 4 GiB), and the ISO 9660 files UDF lacks (names compared
    /// ignoring case, as plain ISO 9660 names are upper case).
    static func isoViewGaps(udf: [UDFFile], iso: [RawPath: ISOEntry]) -> (missing: [String], onlyInISO: [String]) {
        func isoSize(_ path: RawPath) -> Int64? {
            switch iso[path]?.type {
            case .file: iso[path]?.size
            case .hardlink(let target): iso[target].flatMap { if case .file = $0.type { $0.size } else { nil } }
            default: nil
            }
        }
        var missing: [String] = []
        for file in udf where file.kind == .file {
            guard let size = isoSize(file.path) else {
                missing.append("\(file.path.catalogText) is only in UDF")
                continue
            }
            if size != file.size { missing.append("\(file.path.catalogText) has \(file.size) bytes in UDF, \(size) in ISO 9660") }
        }
        let udfNames = Set(udf.filter { $0.kind == .file }.map { $0.path.string.lowercased() })
        let onlyInISO = iso.values.filter { entry in
            switch entry.type {
            case .file, .hardlink: !udfNames.contains(entry.path.string.lowercased())
            default: false
            }
        }.map(\.path.catalogText).sorted()
        return (missing, onlyInISO)
    }
}
