import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import SourceReading

extension DiscLoop {
    /// Reads the disc in the drive: looks at it, names it, stores it as files, as an image or both.
    func process(number: Int) async throws -> DiscResult {
        let device = configuration.device
        output.event("disc", ["disc": number, "device": device], line: "disc \(number) in \(device): reading")
        let volume: DiscVolume
        let contents: DiscContents
        do {
            volume = try await readVolume()
            contents = try await DiscContents.survey(device)
        } catch {
            try Task.checkCancellation()
            return DiscResult(number: number, status: .unreadable, detail: "its file system cannot be read (\(error)); not a data disc, blank, or damaged")
        }
        if contents.files == 0 {
            return DiscResult(number: number, status: .empty, detail: "its file system holds no file")
        }
        let label = try await chooseLabel(volume)
        let (asFiles, asImage) = plan(contents)
        if let owner = configuration.upload.owner, owner.explicit {
            for name in [asFiles ? label : nil, asImage ? (asFiles ? label + " (image)" : label) : nil].compactMap({ $0 }) {
                if let current = try await catalog.otherOwner(ofSource: name, than: owner.id) {
                    var refused = DiscResult(number: number, status: .refused, detail: SourceOwnerChoice.refusal(label: name, currentOwner: current, requested: owner.name))
                    refused.labels = [name]
                    return refused
                }
            }
        }
        output.event("disc_label", [
            "disc": number, "label": label, "volume": volume.identifier ?? "", "files": contents.files ?? 0, "bytes": contents.bytes,
            "as_files": asFiles, "as_image": asImage, "dvd_video": contents.isDVDVideo,
        ], line: "disc \(number): \"\(label)\"" + (volume.identifier.map { " (volume \($0))" } ?? " (no volume label)")
            + ": " + Self.planText(asFiles: asFiles, asImage: asImage, contents: contents))

        var result = DiscResult(number: number, status: .stored, detail: "")
        var details: [String] = []
        if asFiles {
            let (complete, text) = try await storeFiles(label: label, volume: volume)
            result.labels.append(label)
            details.append(text)
            if !complete { result.status = .incomplete }
        }
        if asImage {
            let imageLabel = asFiles ? label + " (image)" : label
            let (complete, text) = try await storeImage(label: imageLabel, discLabel: label, volume: volume)
            result.labels.append(imageLabel)
            details.append(text)
            if !complete { result.status = .incomplete }
        }
        result.detail = details.joined(separator: "; ")
        return result
    }

    /// The rule (`--as auto`): files; a DVD-Video, or a disc whose ISO 9660 view lacks files, as an image as well;
    /// a disc no view can be trusted for, as an image only.
    func plan(_ contents: DiscContents) -> (files: Bool, image: Bool) {
        switch configuration.mode {
        case .files: (true, false)
        case .image: (false, true)
        case .both: (true, true)
        case .auto:
            if case .wholeImage = contents.view { (false, true) } else { (true, contents.isDVDVideo || contents.isoViewIncomplete) }
        }
    }

    static func planText(asFiles: Bool, asImage: Bool, contents: DiscContents) -> String {
        let what = contents.files.map { "\($0) files, \(Format.bytes(contents.bytes))" } ?? "no trustworthy file list"
        let why = contents.isDVDVideo ? ", a DVD-Video" : contents.isoViewIncomplete ? ", its ISO 9660 view is incomplete" : ""
        switch (asFiles, asImage) {
        case (true, true): return "\(what)\(why): read as files and kept as an image as well"
        case (false, true): return "\(what)\(why): kept as an image"
        default: return "\(what): read as files"
        }
    }

    /// The volume descriptors; a drive that just reported a disc may need a moment to read it, so a failure is
    /// retried twice, a poll interval apart.
    private func readVolume() async throws -> DiscVolume {
        var attempt = 0
        while true {
            do {
                return try await DiscVolume.read(configuration.device)
            } catch {
                attempt += 1
                guard attempt < 3 else { throw error }
                try await Task.sleep(for: configuration.pollInterval)
            }
        }
    }

    /// The label this disc had before (seen again: its source continues), else the template's first free label.
    func chooseLabel(_ volume: DiscVolume) async throws -> String {
        if let known = try await catalog.discLabel(identity: volume.identity) { return known }
        var name = volume.identifier.flatMap(DiscVolumeName.display)
        if name == nil, configuration.labelTemplate.usesVolume, let ask = configuration.askName {
            name = await ask("This disc has no volume label. A name for it (Enter: \"\(configuration.fallbackVolume)\"): ")
                .flatMap(DiscVolumeName.display)
        }
        let volumeName = name ?? configuration.fallbackVolume
        let catalog = self.catalog
        guard let label = try await configuration.labelTemplate.firstFreeLabel(
            volume: volumeName, created: volume.created, from: configuration.firstNumber, isTaken: { try await catalog.sourceExists(label: $0) })
        else {
            throw IngestError(.invalidArgument, path: configuration.device, "no free label from the template \(configuration.labelTemplate.text)")
        }
        return label
    }

    private func uploadRun(label: String, discLabel: String, volume: DiscVolume, readAs: String) -> UploadRun {
        var upload = configuration.upload
        upload.label = label
        upload.metadata[IngestCatalog.DiscMetadata.identity] = volume.identity
        upload.metadata[IngestCatalog.DiscMetadata.label] = discLabel
        upload.metadata["disc_volume"] = volume.identifier ?? ""
        upload.metadata["disc_read_as"] = readAs
        return UploadRun(catalog: catalog, staging: staging, configuration: upload,
                         progress: UploadProgress.standard(style: configuration.progressStyle), logger: logger)
    }

    /// The disc's files through the upload of an ISO image (UDF where the ISO 9660 view lacks files).
    private func storeFiles(label: String, volume: DiscVolume) async throws -> (complete: Bool, text: String) {
        let run = uploadRun(label: label, discLabel: label, volume: volume, readAs: "files")
        do {
            let report = try await run.run(isoImage: configuration.device, spoolDirectory: configuration.spoolDirectory)
            if configuration.progressStyle != .jsonLines {
                for line in report.summaryLines { output.write("  " + line) }
            }
            let text = "files: \(report.filesSeen) files, \(Format.bytes(report.bytesSeen)), \(report.filesStaged) stored, \(report.duplicates) duplicates, "
                + "\(report.unchanged) already catalogued" + (report.isComplete ? "" : ", \(report.unreadable.count) UNREADABLE")
            return (report.isComplete, text)
        } catch {
            return (false, try await brokeOff(label: label, error: error))
        }
    }

    /// The whole disc as one ISO image (ddrescue-like: unreadable sectors are zeros and listed in its map).
    private func storeImage(label: String, discLabel: String, volume: DiscVolume) async throws -> (complete: Bool, text: String) {
        let run = uploadRun(label: label, discLabel: discLabel, volume: volume, readAs: "image")
        let base = volume.identifier.flatMap(DiscVolumeName.display)?.replacingOccurrences(of: "/", with: "_") ?? "disc"
        do {
            let report = try await run.runDiscImage(device: configuration.device, imageName: base + ".iso", imagerConfiguration: configuration.imager)
            guard report.result.isClean else {
                let problem = "the image is DEGRADED: \(report.result.badBytes) bytes could not be read and are zeros in it"
                try await markIncomplete(label: label, problem: problem)
                return (false, "image: " + problem)
            }
            return (true, "image: \(base).iso, \(Format.bytes(report.result.byteCount)), \(report.outcome)")
        } catch {
            return (false, try await brokeOff(label: label, error: error))
        }
    }

    /// A run that stopped part of the way: when the disc is to blame (it could not be read to the end, or was
    /// taken out), the source is marked incomplete and the loop goes on; any other failure (the catalog, the
    /// bucket) stops the loop, and so does a graceful shutdown.
    private func brokeOff(label: String, error: any Error) async throws -> String {
        try Task.checkCancellation()
        guard Self.isDiscProblem(error) else { throw error }
        let problem = "the disc could not be read to the end (\(error)); what was read before is kept; insert the disc again to read the rest"
        try await markIncomplete(label: label, problem: problem)
        logger.warning("disc read broke off", metadata: ["disc.label": "\(label)", "disc.error": "\(error)"])
        return "BROKE OFF: " + problem
    }

    /// Records the problem on the source (`source_problems`): until a later run reads the disc in full, nothing
    /// calls the source archived (status page, `uploader sources`, `uploader audit`).
    private func markIncomplete(label: String, problem: String) async throws {
        guard let sourceID = try await catalog.sourceID(label: label) else { return }  // nothing was recorded
        try await catalog.recordWalkProblems(sourceID: sourceID, [WalkProblem(path: ".", problem: problem)])
    }

    static func isDiscProblem(_ error: any Error) -> Bool {
        if error is IngestError { return true }
        if let error = error as? ObjectStoreError { return error.kind == .sourceChanged || error.kind == .sourceUnreadable }
        return false
    }
}
