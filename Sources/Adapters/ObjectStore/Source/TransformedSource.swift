import NIOCore

/// Turns a source's bytes into the bytes to write, piece by piece (the uploader's encryption). One instance
/// serves one pass over the source: a multipart upload resumed in the same call gets a fresh one.
public protocol ByteTransform: AnyObject {
    /// The bytes to write for this piece of the source (possibly none yet).
    func transform(_ piece: ByteBuffer) throws -> ByteBuffer
    /// The bytes still to write once the source has ended.
    func finish() throws -> ByteBuffer
}

extension ObjectSource {
    /// This source's bytes passed through a transform made by `makeTransform`, as a stream of exactly
    /// `outputLength` bytes. The source is read in `pieceSize` pieces, so memory stays at a piece or two.
    public func transformed(
        outputLength: Int64, pieceSize: Int = 1 << 20, _ makeTransform: @escaping @Sendable () -> any ByteTransform
    ) -> ObjectSource {
        let source = self
        return ObjectSource(storage: .stream(length: outputLength, open: {
            TransformingIterator(source: source, pieceSize: pieceSize, transform: makeTransform())
        }))
    }
}

private final class TransformingIterator: ChunkIterator {
    let source: ObjectSource
    let pieceSize: Int
    let transform: any ByteTransform
    var reader: SourceReader?
    var finished = false

    init(source: ObjectSource, pieceSize: Int, transform: any ByteTransform) {
        self.source = source
        self.pieceSize = pieceSize
        self.transform = transform
    }

    func next() async throws -> ByteBuffer? {
        while !finished {
            let reader: SourceReader
            if let open = self.reader {
                reader = open
            } else {
                reader = try await SourceReader.open(source)
                self.reader = reader
            }
            if reader.remaining == 0 {
                // The source's own end is read too: a stream that reports its outcome at its end (a disc being
                // imaged) sees it, and one longer than announced fails as it would untransformed.
                try await reader.verifyEnd()
                finished = true
                let tail = try transform.finish()
                return tail.readableBytes > 0 ? tail : nil
            }
            let output = try transform.transform(try await reader.readAvailable(upTo: pieceSize))
            if output.readableBytes > 0 { return output }
        }
        return nil
    }

    deinit { reader?.close() }
}
