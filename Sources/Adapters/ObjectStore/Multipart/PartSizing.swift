/// S3's multipart limits and the part size that respects them.
public enum PartSizing {
    public static let minimumPartSize: Int64 = 5 << 20
    public static let maximumPartSize: Int64 = 5 << 30
    public static let maximumPartCount: Int64 = 10_000
    public static let maximumObjectSize: Int64 = 5 << 40

    /// The preferred size, raised to 5 MiB at least and, for big objects, to the next MiB multiple that keeps the
    /// part count at or below 10,000 (a 1 TiB object gets ≈105 MiB parts).
    public static func partSize(objectSize: Int64, preferred: Int) throws(ObjectStoreError) -> Int64 {
        guard objectSize <= maximumObjectSize else {
            throw ObjectStoreError(.invalidArgument, operation: "plan multipart upload", location: "\(objectSize) bytes",
                                   message: "S3 objects are limited to 5 TiB")
        }
        var size = max(Int64(preferred), minimumPartSize)
        let needed = (objectSize + maximumPartCount - 1) / maximumPartCount
        if needed > size {
            let mebibyte: Int64 = 1 << 20
            size = (needed + mebibyte - 1) / mebibyte * mebibyte
        }
        return min(size, maximumPartSize)
    }

    public static func partCount(objectSize: Int64, partSize: Int64) -> Int {
        Int(max(1, (objectSize + partSize - 1) / partSize))
    }
}
