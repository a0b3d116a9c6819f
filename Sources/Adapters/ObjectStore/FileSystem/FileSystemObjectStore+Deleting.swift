#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SystemIO

// MARK: Deleting

extension FileSystemObjectStore {
    public func delete(_ key: String) async throws {
        _ = try mapping.validate(key, operation: "DELETE")
        let mapping = self.mapping
        let durable = configuration.durable
        do {
            try await blocking {
                let objectPath = mapping.objectPath(key)
                if let info = try POSIXFile.status(path: objectPath), !POSIXFile.isRegularFile(info) { return }
                try POSIXFile.removeFile(objectPath)
                try POSIXFile.removeFile(mapping.sidecarPath(key))
                if durable { try? POSIXFile.syncDirectory(POSIXFile.parentDirectory(of: objectPath)) }
                // S3 has no directories: drop the ones this delete emptied.
                Self.pruneEmptyDirectories(from: POSIXFile.parentDirectory(of: objectPath), stopAt: mapping.root)
                Self.pruneEmptyDirectories(from: POSIXFile.parentDirectory(of: mapping.sidecarPath(key)),
                                           stopAt: mapping.metadataDirectory)
            }
        } catch {
            throw failure(.localIO, "DELETE", key, error)
        }
    }

    /// Unlinks every object and sidecar, then syncs each directory they were in once (one fsync per directory
    /// instead of per object: the archiver removes thousands of staging copies after a bundle).
    public func delete(keys: [String]) async -> [String: any Error] {
        var failures: [String: any Error] = [:]
        var valid: [String] = []
        for key in keys {
            do {
                _ = try mapping.validate(key, operation: "DELETE")
                valid.append(key)
            } catch {
                failures[key] = error
            }
        }
        let mapping = self.mapping
        let durable = configuration.durable
        let validKeys = valid
        do {
            let systemFailures = try await blocking { () -> [String: String] in
                var failed: [String: String] = [:]
                var directories: Set<String> = []
                for key in validKeys {
                    let objectPath = mapping.objectPath(key)
                    do {
                        if let info = try POSIXFile.status(path: objectPath), !POSIXFile.isRegularFile(info) { continue }
                        try POSIXFile.removeFile(objectPath)
                        try POSIXFile.removeFile(mapping.sidecarPath(key))
                        directories.insert(POSIXFile.parentDirectory(of: objectPath))
                        directories.insert(POSIXFile.parentDirectory(of: mapping.sidecarPath(key)))
                    } catch {
                        failed[key] = "\(error)"
                    }
                }
                if durable {
                    for directory in directories { try? POSIXFile.syncDirectory(directory) }
                }
                for directory in directories.sorted(by: >) {
                    Self.pruneEmptyDirectories(from: directory, stopAt: directory.hasPrefix(mapping.metadataDirectory) ? mapping.metadataDirectory : mapping.root)
                }
                return failed
            }
            for (key, message) in systemFailures {
                failures[key] = ObjectStoreError(.localIO, operation: "DELETE", location: describe(key), message: message)
            }
        } catch {
            for key in valid { failures[key] = failure(.localIO, "DELETE", key, error) }
        }
        return failures
    }

    private static func pruneEmptyDirectories(from directory: String, stopAt root: String) {
        var current = directory
        while current.count > root.count, current.hasPrefix(root + "/"), POSIXFile.removeEmptyDirectory(current) {
            current = POSIXFile.parentDirectory(of: current)
        }
    }

    /// Removes temporary files that writers which crashed left behind. Only files older than `age` are touched, so
    /// a write in progress in another process is safe.
    @discardableResult
    public func removeStaleTemporaryFiles(olderThan age: Duration = .seconds(86_400)) async throws -> Int {
        let directory = mapping.temporaryDirectory
        let cutoff = Date().addingTimeInterval(-TimeInterval(age.components.seconds))
        return try await blocking {
            var removed = 0
            for entry in try POSIXFile.directoryEntries(directory) where !entry.isDirectory {
                let path = directory + "/" + entry.name
                guard let info = try POSIXFile.status(path: path) else { continue }
                #if canImport(Darwin)
                let modified = TimeInterval(info.st_mtimespec.tv_sec)
                #else
                let modified = TimeInterval(info.st_mtim.tv_sec)
                #endif
                if Date(timeIntervalSince1970: modified) < cutoff {
                    try POSIXFile.removeFile(path)
                    removed += 1
                }
            }
            return removed
        }
    }
}
