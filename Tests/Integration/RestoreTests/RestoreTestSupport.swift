import SystemIO
import Catalog
import Foundation
import ObjectStore
import PipelineCore
import Testing
import TestSupport

/// Running `uploader restore` and friends as real processes, and reading what they wrote.
struct UploaderRun {
    let status: Int32
    let output: String

    /// The JSON events (`--json` output), in order.
    var events: [[String: Any]] {
        output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{") else { return nil }
            return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
    }

    func events(_ name: String) -> [[String: Any]] { events.filter { $0["event"] as? String == name } }

    var summary: [String: Any] { events("summary").last ?? [:] }

    /// Paths of `file` events with this outcome.
    func files(_ outcome: String) -> [String] {
        events("file").filter { $0["outcome"] as? String == outcome }.compactMap { $0["path"] as? String }.sorted()
    }

    /// The objects a restore request was made for.
    var restoreRequests: [String] {
        events("object").filter { $0["state"] as? String == "restore_requested" }.compactMap { $0["key"] as? String }
    }
}

extension PipelineHarness {
    /// `execute`, with the server's message in the failure (PSQLError hides it by default).
    func executeReporting(_ sql: String) async throws {
        do {
            try await execute(sql)
        } catch {
            Issue.record("SQL failed: \(String(reflecting: error))")
            throw error
        }
    }

    func uploader(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> UploaderRun {
        let result = try await Program.run("uploader", arguments, environment: environment.merging(extra) { $1 })
        return UploaderRun(status: result.status, output: result.output)
    }

    func restore(_ arguments: [String], to directory: String, environment extra: [String: String] = [:]) async throws -> UploaderRun {
        try await uploader(["restore"] + arguments + ["--to", directory, "--json"], environment: extra)
    }

    /// The source tree's files and their bytes, by relative path.
    func sourceFiles() throws -> [String: [UInt8]] {
        try Self.files(under: source.path)
    }

    static func files(under root: String) throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return result }
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory)
            if !isDirectory.boolValue, let data = FileManager.default.contents(atPath: root + "/" + relative) { result[relative] = Array(data) }
        }
        return result
    }

    static func modificationTime(_ path: String) throws -> Double {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
    }
}

/// A fresh directory to restore into (removed with the harness's work directory).
func restoreDirectory(_ harness: PipelineHarness, _ name: String = "restored") -> String {
    harness.work.path + "/" + name
}
