import Crypto
import NIOCore
import PipelineCore

/// Writes a stream of bytes (a downloaded object) to a local file (bounded memory) and returns their size and SHA-256.
public func saveToFile<Bytes: AsyncSequence>(_ body: Bytes, path: String) async throws -> (size: Int64, sha256: String) where Bytes.Element == ByteBuffer {
    let writer = try BufferedFileWriter(creating: path, flushSize: 4 << 20)
    let written = try await append(body, to: writer)
    try await writer.finish()
    return written
}

/// Appends a stream of bytes to `writer` and returns how many there were and their SHA-256 (several objects
/// joined into one file, each checked on its own).
public func append<Bytes: AsyncSequence>(_ body: Bytes, to writer: BufferedFileWriter) async throws -> (size: Int64, sha256: String) where Bytes.Element == ByteBuffer {
    let start = writer.offset
    var hasher = SHA256()
    for try await chunk in body {
        chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        try await writer.write(chunk)
    }
    return (writer.offset - start, hasher.finalize().hexString)
}
