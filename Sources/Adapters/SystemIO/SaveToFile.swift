import Crypto
import NIOCore
import PipelineCore

/// Writes a stream of bytes (a downloaded object) to a local file (bounded memory) and returns their size and SHA-256.
public func saveToFile<Bytes: AsyncSequence>(_ body: Bytes, path: String) async throws -> (size: Int64, sha256: String) where Bytes.Element == ByteBuffer {
    let writer = try BufferedFileWriter(creating: path, flushSize: 4 << 20)
    var hasher = SHA256()
    for try await chunk in body {
        chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        try await writer.write(chunk)
    }
    try await writer.finish()
    return (writer.offset, hasher.finalize().hexString)
}
