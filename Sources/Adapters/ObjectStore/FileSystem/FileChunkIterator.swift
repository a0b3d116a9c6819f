import NIOCore
import SystemIO

/// Streams a file's bytes in chunks read on the thread pool; closes the file at the end or when dropped.
final class FileChunkIterator: ChunkIterator {
    private var fd: Int32
    private var offset: Int64
    private var remaining: Int64
    private let chunkSize: Int

    init(fd: Int32, offset: Int64, remaining: Int64, chunkSize: Int) {
        self.fd = fd
        self.offset = offset
        self.remaining = remaining
        self.chunkSize = chunkSize
    }

    func next() async throws -> ByteBuffer? {
        guard fd >= 0 else { return nil }
        guard remaining > 0 else {
            closeFile()
            return nil
        }
        let count = Int(min(Int64(chunkSize), remaining))
        let (fd, offset) = (self.fd, self.offset)
        let chunk = try await blocking { try POSIXFile.read(fd: fd, offset: offset, count: count) }
        guard chunk.readableBytes > 0 else {
            closeFile()
            throw ObjectStoreError(.localIO, operation: "GET", location: "file descriptor \(fd)",
                                   message: "the file shrank while it was read")
        }
        self.offset += Int64(chunk.readableBytes)
        remaining -= Int64(chunk.readableBytes)
        return chunk
    }

    private func closeFile() {
        if fd >= 0 { POSIXFile.closeFile(fd) }
        fd = -1
    }

    deinit { closeFile() }
}
