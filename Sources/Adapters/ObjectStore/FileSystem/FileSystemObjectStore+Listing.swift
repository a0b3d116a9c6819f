import Foundation
import SystemIO

// MARK: Listing

extension FileSystemObjectStore {
    public func list(prefix: String, continuationToken: String?, maxKeys: Int) async throws -> ObjectListPage {
        let mapping = self.mapping
        let keys: [String]
        do {
            keys = try await blocking { try Self.keys(under: prefix, mapping: mapping) }
        } catch {
            throw failure(.localIO, "list", prefix, error)
        }
        var page: [String] = []
        let limit = max(1, min(maxKeys, 1000))
        for key in keys where continuationToken.map({ $0.utf8.lexicographicallyPrecedes(key.utf8) }) ?? true {
            page.append(key)
            if page.count == limit { break }
        }
        let pageKeys = page
        let summaries = try await blocking { () -> [ObjectSummary] in
            pageKeys.compactMap { key in
                guard let info = try? POSIXFile.status(path: mapping.objectPath(key)) else { return nil }
                let object = Self.objectInfo(key: key, info: info, sidecar: Self.sidecar(for: key, info: info,
                                                                                        mapping: mapping), now: Date())
                return ObjectSummary(key: key, size: object.size, etag: object.etag, lastModified: object.lastModified,
                                     storageClassName: object.storageClassName)
            }
        }
        let more = page.count == limit && keys.last != page.last
        return ObjectListPage(objects: summaries, nextContinuationToken: more ? page.last : nil)
    }

    /// Every key starting with `prefix`, sorted by UTF-8 bytes as S3 sorts them. Blocking.
    private static func keys(under prefix: String, mapping: FileKeyMapping) throws -> [String] {
        // Only the directory the prefix points into needs walking.
        let directoryPart = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) : ""
        let start = directoryPart.isEmpty ? mapping.root : mapping.root + "/" + directoryPart
        guard let info = try POSIXFile.status(path: start), POSIXFile.isDirectory(info) else { return [] }
        var keys: [String] = []
        var pending: [(path: String, key: String)] = [(start, directoryPart)]
        while let next = pending.popLast() {
            let (path, keyPrefix) = (next.path, next.key)
            for entry in try POSIXFile.directoryEntries(path) {
                let key = keyPrefix.isEmpty ? entry.name : keyPrefix + "/" + entry.name
                if keyPrefix.isEmpty, entry.name == FileKeyMapping.internalDirectoryName { continue }
                if entry.isDirectory {
                    // Descend only where keys with the prefix can be.
                    if key.hasPrefix(prefix) || prefix.hasPrefix(key + "/") { pending.append((path + "/" + entry.name, key)) }
                } else if key.hasPrefix(prefix) {
                    keys.append(key)
                }
            }
        }
        keys.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return keys
    }
}
