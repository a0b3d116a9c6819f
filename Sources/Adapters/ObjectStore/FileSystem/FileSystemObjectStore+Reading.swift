#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import PipelineCore
import SystemIO

// MARK: Reading

extension FileSystemObjectStore {
    /// What is kept about `key` beside its bytes: a plain object's attribute (read through `fd` when the file is
    /// open), else the JSON sidecar if it still describes the file with this inode and size.
    static func sidecar(for key: String, info: stat, mapping: FileKeyMapping, fd: Int32? = nil) -> ObjectSidecar? {
        if let value = POSIXFile.attribute(fd: fd, path: fd == nil ? mapping.objectPath(key) : nil, name: ObjectSidecar.attributeName,
                                           capacity: ObjectSidecar.attributeLength),
           let plain = ObjectSidecar(attribute: value, inode: UInt64(info.st_ino), size: Int64(info.st_size)) {
            return plain
        }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: mapping.sidecarPath(key))),
              let sidecar = try? ObjectSidecar.decoder.decode(ObjectSidecar.self, from: data),
              sidecar.inode == UInt64(info.st_ino), sidecar.size == Int64(info.st_size) else { return nil }
        return sidecar
    }

    static func objectInfo(key: String, info: stat, sidecar: ObjectSidecar?, now: Date) -> ObjectInfo {
        let storageClassName = sidecar?.storageClass ?? StorageClass.standard.rawValue
        let archived = StorageClass(rawValue: storageClassName)?.needsRestoreBeforeRead ?? false
        var restore = RestoreState.notArchived
        if archived {
            if let until = sidecar?.restoredUntil, until > now {
                restore = (sidecar?.restoreReadyAt).map { $0 > now } == true ? .inProgress : .restored(until: until)
            } else {
                restore = .archived
            }
        }
        #if canImport(Darwin)
        let modified = Date(timeIntervalSince1970: TimeInterval(info.st_mtimespec.tv_sec))
        #else
        let modified = Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec))
        #endif
        return ObjectInfo(
            key: key, size: Int64(info.st_size), etag: sidecar.map { "\"\($0.sha256)\"" }, lastModified: modified,
            storageClassName: storageClassName, restore: restore, contentType: sidecar?.contentType,
            metadata: sidecar?.metadata ?? [:],
            checksumSHA256: sidecar.flatMap { hexBytes($0.sha256) }.map { Data($0).base64EncodedString() })
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        _ = try mapping.validate(key, operation: "HEAD")
        let mapping = self.mapping
        do {
            return try await blocking { () throws -> ObjectInfo? in
                guard let info = try POSIXFile.status(path: mapping.objectPath(key)), POSIXFile.isRegularFile(info)
                else { return nil }
                return Self.objectInfo(key: key, info: info, sidecar: Self.sidecar(for: key, info: info, mapping: mapping),
                                       now: Date())
            }
        } catch {
            throw failure(.localIO, "HEAD", key, error)
        }
    }

    public func get(_ key: String, range: ByteRange?) async throws -> ObjectDownload {
        _ = try mapping.validate(key, operation: "GET")
        let mapping = self.mapping
        let location = describe(key)
        let needRestore = configuration.archivedObjectsNeedRestore
        let (fd, info) = try await blocking { () throws -> (Int32, ObjectInfo) in
            let fd = open(mapping.objectPath(key), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else {
                let code = errno
                if code == ENOENT || code == ENOTDIR || code == ELOOP || code == EISDIR {
                    throw ObjectStoreError(.notFound, operation: "GET", location: location, message: "no such key")
                }
                throw ObjectStoreError(.localIO, operation: "GET", location: location,
                                       message: String(cString: strerror(code)))
            }
            do {
                let status = try POSIXFile.status(fd: fd)
                guard POSIXFile.isRegularFile(status) else {
                    throw ObjectStoreError(.notFound, operation: "GET", location: location, message: "no such key")
                }
                let info = Self.objectInfo(key: key, info: status,
                                           sidecar: Self.sidecar(for: key, info: status, mapping: mapping, fd: fd), now: Date())
                if needRestore, !info.restore.isReadable {
                    throw ObjectStoreError(
                        .invalidObjectState, operation: "GET", location: location,
                        message: "the object is in \(info.storageClassName) and has no finished restore",
                        serverCode: "InvalidObjectState")
                }
                return (fd, info)
            } catch {
                POSIXFile.closeFile(fd)
                throw error
            }
        }
        let first = range?.first ?? 0
        let last = min(range?.last ?? (info.size - 1), info.size - 1)
        if range != nil, first >= info.size, !(first == 0 && info.size == 0) {
            POSIXFile.closeFile(fd)
            throw ObjectStoreError(.invalidArgument, operation: "GET", location: location,
                                   message: "the range starts after the object's end (\(info.size) bytes)",
                                   serverCode: "InvalidRange", httpStatus: 416)
        }
        let length = max(0, last - first + 1)
        let iterator = FileChunkIterator(fd: fd, offset: first, remaining: length, chunkSize: configuration.chunkSize)
        let box = IteratorBox(iterator)
        return ObjectDownload(info: info, contentLength: length, body: ObjectByteStream { box.take() })
    }
}
