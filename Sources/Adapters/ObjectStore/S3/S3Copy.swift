import Foundation
import NIOCore
import SigV4
import NIOHTTP1
import PipelineCore

extension S3ObjectStore {
    /// Server-side copy: CopyObject up to `options.singleCopyLimit` (S3 allows 5 GB), UploadPartCopy above it.
    /// Archived sources must be restored first (S3 answers `InvalidObjectState`).
    public func copy(from sourceKey: String, to destinationKey: String, options: CopyOptions) async throws
        -> ObjectInfo
    {
        let source = try fullKey(sourceKey, operation: "CopyObject")
        let destination = try fullKey(destinationKey, operation: "CopyObject")
        guard let sourceInfo = try await head(sourceKey) else {
            throw ObjectStoreError(.notFound, operation: "CopyObject", location: client.location(source),
                                   message: "the source object does not exist")
        }
        let copySource = "/\(bucket)/" + SigV4URIEncoding.encode(source, encodeSlash: false)
        if sourceInfo.size <= options.singleCopyLimit {
            var request = S3Client.Request(method: .PUT, key: destination, operation: "CopyObject")
            request.headers.append(("x-amz-copy-source", copySource))
            request.headers.append(("x-amz-metadata-directive", "COPY"))
            if let etag = sourceInfo.etag { request.headers.append(("x-amz-copy-source-if-match", etag)) }
            if let storageClass = options.storageClass {
                request.headers.append(("x-amz-storage-class", storageClass.rawValue))
            }
            _ = try await client.performCollecting(request)
        } else {
            try await multipartCopy(source: sourceInfo, copySource: copySource, destination: destination,
                                    options: options)
        }
        guard let copied = try await head(destinationKey), copied.size == sourceInfo.size else {
            throw ObjectStoreError(.protocolViolation, operation: "CopyObject", location: client.location(destination),
                                   message: "the copy succeeded but no object of the source's size is there")
        }
        return copied
    }

    private func multipartCopy(source: ObjectInfo, copySource: String, destination: String, options: CopyOptions)
        async throws
    {
        var create = S3Client.Request(method: .POST, key: destination, query: [("uploads", "")],
                                      operation: "CreateMultipartUpload (copy)")
        var putOptions = PutOptions(storageClass: options.storageClass, contentType: source.contentType,
                                    metadata: source.metadata)
        putOptions.partSize = Int(options.partSize)
        create.headers = try Self.writeHeaders(putOptions, location: client.location(destination))
        let created = try await client.performCollecting(create)
        guard let uploadID = S3Client.document(created.data)?.value("UploadId") else {
            throw ObjectStoreError(.protocolViolation, operation: "CreateMultipartUpload (copy)",
                                   location: client.location(destination), message: "the answer holds no UploadId")
        }
        do {
            let partSize = try PartSizing.partSize(objectSize: source.size, preferred: Int(options.partSize))
            let count = PartSizing.partCount(objectSize: source.size, partSize: partSize)
            var etags = [String](repeating: "", count: count)
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                var running = 0
                for number in 1...count {
                    if running >= 4, let done = try await group.next() {
                        etags[done.0 - 1] = done.1
                        running -= 1
                    }
                    let first = Int64(number - 1) * partSize
                    let last = min(first + partSize, source.size) - 1
                    var request = S3Client.Request(
                        method: .PUT, key: destination,
                        query: [("partNumber", String(number)), ("uploadId", uploadID)],
                        operation: "UploadPartCopy \(number)")
                    request.headers.append(("x-amz-copy-source", copySource))
                    request.headers.append(("x-amz-copy-source-range", "bytes=\(first)-\(last)"))
                    if let etag = source.etag { request.headers.append(("x-amz-copy-source-if-match", etag)) }
                    let client = self.client
                    group.addTask {
                        let response = try await client.performCollecting(request)
                        guard let etag = S3Client.document(response.data)?.value("ETag") else {
                            throw ObjectStoreError(.protocolViolation, operation: "UploadPartCopy \(number)",
                                                   location: client.location(destination),
                                                   message: "the answer holds no ETag")
                        }
                        return (number, etag)
                    }
                    running += 1
                }
                while let done = try await group.next() { etags[done.0 - 1] = done.1 }
            }
            var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            for (index, etag) in etags.enumerated() {
                xml += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(XMLText.escape(etag))</ETag></Part>"
            }
            xml += "</CompleteMultipartUpload>"
            _ = try await client.performCollecting(S3Client.Request(
                method: .POST, key: destination, query: [("uploadId", uploadID)],
                headers: [("Content-Type", "application/xml")], body: ByteBuffer(string: xml),
                operation: "CompleteMultipartUpload (copy)"))
        } catch {
            let store = self
            await Task { try? await store.abort(fullKey: destination, uploadID: uploadID) }.value
            throw error
        }
    }
}
