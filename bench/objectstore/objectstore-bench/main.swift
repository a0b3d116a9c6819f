import Foundation
import ObjectStore
import PipelineCore

/// Uploads one file through the ObjectStore module, for bench/objectstore/run.
///
///     objectstore-bench upload FILE URL [--key KEY] [--part-size MiB] [--parallel N] [--storage-class CLASS]
///
/// URL is `s3://bucket/prefix` or `file:///path`; S3 settings and credentials come from the standard AWS
/// variables. Prints one JSON line with the size, the SHA-256, the part count and the seconds taken.

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("objectstore-bench: \(message)\n".utf8))
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 3, arguments[0] == "upload" else {
    fail("usage: objectstore-bench upload FILE URL [--key KEY] [--part-size MiB] [--parallel N] [--storage-class CLASS]")
}
let file = arguments[1]
let urlText = arguments[2]
var key = URL(fileURLWithPath: file).lastPathComponent
var options = PutOptions()
var index = 3
while index < arguments.count {
    let flag = arguments[index]
    guard index + 1 < arguments.count else { fail("\(flag) needs a value") }
    let value = arguments[index + 1]
    switch flag {
    case "--key": key = value
    case "--part-size":
        guard let mebibytes = Int(value), mebibytes >= 5 else { fail("--part-size is in MiB, at least 5") }
        options.partSize = mebibytes << 20
        options.multipartThreshold = mebibytes << 20
    case "--parallel":
        guard let parallel = Int(value), parallel >= 1 else { fail("--parallel must be at least 1") }
        options.maxPartsInFlight = parallel
    case "--storage-class":
        guard let storageClass = StorageClass(rawValue: value) else { fail("unknown storage class") }
        options.storageClass = storageClass
    default: fail("unknown option \(flag)")
    }
    index += 2
}

let url: StorageURL
do {
    url = try StorageURL(parsing: urlText)
} catch {
    fail("\(error)")
}

do {
    let store = try await openObjectStore(
        url: url, settings: ObjectStoreSettings(environment: ProcessInfo.processInfo.environment))
    let clock = ContinuousClock()
    let started = clock.now
    let result = try await store.put(key, from: .file(file), options: options)
    let elapsed = clock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print(#"{"key":"\#(result.key)","size":\#(result.size),"sha256":"\#(result.sha256)","parts":\#(result.partCount),"seconds":\#(String(format: "%.3f", seconds))}"#)
} catch {
    fail("\(error)")
}
