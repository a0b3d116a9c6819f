#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArchiveFormat
import Catalog
import Crypto
import Foundation
import NIOCore
import ObjectStore
import PipelineCore
import Synchronization
import SourceReading
import SystemIO

/// Bytes written to partial files by this process, for the test hook that kills it mid-download.
let bytesWrittenByProcess = Atomic<Int64>(0)

/// Writes restored files: from a (ranged) stream of an archive object, resuming a partial file, or from a tar
/// being read locally. Every file's SHA-256 is checked before it is moved into place.
struct FileWriter: Sendable {
    let destination: SafeDestination
    let killAfterBytes: Int64?
    let progress: RestoreProgress

    /// Fetches the content from `offset` (within the file's content) to its end.
    typealias Fetch = @Sendable (_ offset: Int64) async throws -> ObjectByteStream

    /// Writes `expected.size` bytes into the target's partial file, keeping (and re-hashing) what an earlier run
    /// left there; verifies the SHA-256; sets the modification time and renames it into place. Returns the bytes
    /// fetched. A checksum mismatch after resuming starts over once from the first byte.
    func write(_ target: SafeDestination.Target, size: Int64, sha256: String, decryption: FileDecryption? = nil, modifiedAt: Double?,
               label: String, fetch: Fetch) async throws -> Int64 {
        if let decryption {
            return try await writeDecrypted(target, size: size, sha256: sha256, decryption: decryption, modifiedAt: modifiedAt, label: label, fetch: fetch)
        }
        var fetched: Int64 = 0
        for attempt in 0..<2 {
            let destination = self.destination
            let (descriptor, existing) = try await blocking { try destination.openPartial(target, fresh: attempt > 0) }
            var closeDescriptor = true
            defer { if closeDescriptor { close(descriptor) } }
            var start = existing
            if start > size {
                guard ftruncate(descriptor, 0) == 0 else { throw RestoreError(.localIO, "\(target.path): cannot truncate its partial file") }
                start = 0
            }
            let resumeAt = start
            var hasher = try await blocking { try Self.hash(descriptor, upTo: resumeAt) }
            var offset = start
            if offset < size {
                for try await chunk in try await fetch(offset) {
                    guard offset + Int64(chunk.readableBytes) <= size else {
                        throw RestoreError(.checksumMismatch, "\(label): the archive returned more than the \(size) bytes recorded")
                    }
                    chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    let at = offset
                    // Zeros stay holes (the partial file ends before `at`); the length is set before the commit.
                    try await blocking { try chunk.withUnsafeReadableBytes { raw in try writeSkippingZeros(descriptor, raw, at: at) } }
                    offset += Int64(chunk.readableBytes)
                    fetched += Int64(chunk.readableBytes)
                    await progress.downloaded(Int64(chunk.readableBytes))
                    noteWritten(Int64(chunk.readableBytes))
                }
            }
            let digest = Array(hasher.finalize()).hexString
            guard offset == size, digest == sha256 else {
                destination.removePartial(target)
                if start > 0 && attempt == 0 { continue }
                let what = offset == size ? "its SHA-256 is \(digest), the catalog says \(sha256)" : "\(offset) bytes arrived, the catalog says \(size)"
                throw RestoreError(.checksumMismatch, "\(label): \(what); not restored")
            }
            closeDescriptor = false
            try await blocking { try destination.commit(descriptor, to: target, modifiedAt: modifiedAt, length: size) }
            return fetched
        }
        return fetched
    }

    func noteWritten(_ count: Int64) {
        guard let limit = killAfterBytes else { return }
        if bytesWrittenByProcess.add(count, ordering: .relaxed).newValue >= limit { kill(getpid(), SIGKILL) }
    }

    static func hash(_ descriptor: Int32, upTo length: Int64) throws -> SHA256 {
        var hasher = SHA256()
        try readBack(descriptor, upTo: length) { hasher.update(bufferPointer: $0) }
        return hasher
    }

    /// Hands the first `length` bytes of a file to `body`, 4 MiB at a time.
    static func readBack(_ descriptor: Int32, upTo length: Int64, _ body: (UnsafeRawBufferPointer) -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: 4 << 20)
        var offset: Int64 = 0
        while offset < length {
            let count = try buffer.withUnsafeMutableBytes { raw -> Int in
                let result = pread(descriptor, raw.baseAddress!, min(raw.count, Int(length - offset)), off_t(offset))
                guard result > 0 else { throw RestoreError(.localIO, "cannot read back a file: \(String(cString: strerror(errno)))") }
                return result
            }
            buffer.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            offset += Int64(count)
        }
    }

    /// The SHA-256 of a regular file already at the target (nil when something else is there or it cannot be
    /// read), to tell "already restored" from "in the way".
    static func hashExisting(_ destination: SafeDestination, _ target: SafeDestination.Target, decryption: FileDecryption? = nil) -> String? {
        let descriptor = destination.openExisting(target)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        // An encrypted source's catalog hash is keyed: the file in place is hashed the same way.
        var hasher = ContentHasher(dedupeKey: decryption?.unlock.dedupeKey)
        guard (try? readBack(descriptor, upTo: Int64(info.st_size), { hasher.update($0) })) != nil else { return nil }
        return hasher.finalize()
    }
}

/// Reads tar members out of a local file (a downloaded bundle) and writes the wanted ones, refusing members that
/// are not regular files or whose names would leave the destination.
struct LocalBundleExtractor {
    let destination: SafeDestination
    let writer: FileWriter

    /// `wanted` maps each member's data offset to the files that want its bytes. Returns per-file results: a
    /// stream that breaks off fails the members not reached yet, and keeps the results of those written before.
    func extract(_ reader: TarReader, bundleKey: String, wanted: [Int64: [FileJob]]) -> [(FileJob, Result<Void, RestoreError>)] {
        var results: [(FileJob, Result<Void, RestoreError>)] = []
        var remaining = wanted
        func nextEntry() -> TarEntry? {
            do { return try reader.next() } catch {
                let failure = Self.restoreError(error)
                for jobs in remaining.values { results += jobs.map { ($0, .failure(failure)) } }
                remaining = [:]
                return nil
            }
        }
        while !remaining.isEmpty, let entry = nextEntry() {
            guard let jobs = remaining.removeValue(forKey: entry.dataOffset) else { continue }
            if let problem = Self.memberProblem(entry) {
                for job in jobs {
                    results.append((job, .failure(RestoreError(.unsafePath, "\(job.path): refused: bundle \(bundleKey) member '\(entry.name)' \(problem)"))))
                }
                continue
            }
            results += writeMember(reader, entry: entry, jobs: jobs, bundleKey: bundleKey)
        }
        for jobs in remaining.values {
            for job in jobs {
                results.append((job, .failure(RestoreError(.objectMissing, "\(job.path): bundle \(bundleKey) has no member at offset \(job.location.bundleOffset ?? -1)"))))
            }
        }
        return results
    }

    /// Streams the current member's data into the partial files of every job that wants it, then checks and
    /// commits each.
    func writeMember(_ reader: TarReader, entry: TarEntry, jobs: [FileJob], bundleKey: String) -> [(FileJob, Result<Void, RestoreError>)] {
        var results: [(FileJob, Result<Void, RestoreError>)] = []
        var outputs: [MemberOutput] = []
        for job in jobs {
            do {
                let target = try destination.target(job.path, partialTag: String(job.location.fileID))
                let (descriptor, _) = try destination.openPartial(target, fresh: true)
                outputs.append(MemberOutput(job: job, target: target, descriptor: descriptor, sink: job.decryption.map(DecryptingSink.init)))
            } catch {
                results.append((job, .failure(Self.restoreError(error))))
            }
        }
        var offset: Int64 = 0
        var failure: RestoreError?
        do {
            while true {
                let data = try reader.readData(max: 1 << 20)
                if data.isEmpty { break }
                for index in outputs.indices {
                    outputs[index].hasher.update(data: data)
                    try outputs[index].write(data, at: offset, label: "\(outputs[index].job.path) (\(bundleKey))")
                }
                offset += Int64(data.count)
                writer.noteWritten(Int64(data.count) * Int64(outputs.count))
            }
        } catch {
            failure = Self.restoreError(error)
        }
        for index in outputs.indices {
            let job = outputs[index].job
            defer { outputs[index].target.close() }
            var memberFailure = failure
            if memberFailure == nil {
                do { try outputs[index].finish(label: "\(job.path) (\(bundleKey))") } catch { memberFailure = Self.restoreError(error) }
            }
            let output = outputs[index]
            let digest = Array(output.hasher.finalize()).hexString
            if let failure = memberFailure {
                close(output.descriptor)
                destination.removePartial(output.target)
                results.append((job, .failure(failure)))
            } else if let problem = output.sink?.problem(storedSize: job.size, storedSHA256: job.sha256) {
                close(output.descriptor)
                destination.removePartial(output.target)
                results.append((job, .failure(RestoreError(.checksumMismatch, "\(job.path) (\(bundleKey)): \(problem); not restored"))))
            } else if entry.size != job.size || digest != job.sha256 {
                close(output.descriptor)
                destination.removePartial(output.target)
                results.append((job, .failure(RestoreError(.checksumMismatch,
                    "\(job.path): member of \(bundleKey) has SHA-256 \(digest) (\(entry.size) bytes), the catalog says \(job.sha256) (\(job.size) bytes); not restored"))))
            } else {
                do {
                    try destination.commit(output.descriptor, to: output.target, modifiedAt: job.location.modifiedAt)
                    results.append((job, .success(())))
                } catch {
                    results.append((job, .failure(Self.restoreError(error))))
                }
            }
        }
        return results
    }

    struct MemberOutput {
        let job: FileJob
        let target: SafeDestination.Target
        let descriptor: Int32
        /// An encrypted file's decryption: the member's bytes are an age file, its plaintext goes to disk.
        var sink: DecryptingSink?
        var hasher = SHA256()
        var plainOffset: Int64 = 0

        init(job: FileJob, target: SafeDestination.Target, descriptor: Int32, sink: DecryptingSink?) {
            self.job = job
            self.target = target
            self.descriptor = descriptor
            self.sink = sink
        }

        mutating func write(_ data: [UInt8], at offset: Int64, label: String) throws {
            guard sink != nil else {
                try data.withUnsafeBytes { raw in try writeAll(descriptor, raw, at: offset) }
                return
            }
            let plain = try data.withUnsafeBytes { try sink!.consume($0, label: label) }
            try writePlain(plain)
        }

        mutating func finish(label: String) throws {
            guard sink != nil else { return }
            try writePlain(try sink!.finish(label: label))
        }

        private mutating func writePlain(_ plain: [UInt8]) throws {
            guard !plain.isEmpty else { return }
            try plain.withUnsafeBytes { raw in try writeAll(descriptor, raw, at: plainOffset) }
            plainOffset += Int64(plain.count)
        }
    }

    static func restoreError(_ error: any Error) -> RestoreError {
        error as? RestoreError ?? RestoreError(.localIO, "\(error)")
    }

    /// Why a tar member must not be written: not a regular file, or a name that is absolute or climbs out.
    static func memberProblem(_ entry: TarEntry) -> String? {
        if !entry.isRegularFile {
            let kind = entry.typeFlag == UInt8(ascii: "2") ? "a symbolic link" : entry.typeFlag == UInt8(ascii: "1") ? "a hard link"
                : entry.typeFlag == UInt8(ascii: "5") ? "a directory" : "not a regular file (type '\(Character(UnicodeScalar(entry.typeFlag)))')"
            return "is \(kind)"
        }
        if entry.name.hasPrefix("/") { return "has an absolute path" }
        if entry.name.split(separator: "/").contains("..") { return "has a '..' component" }
        return nil
    }
}
