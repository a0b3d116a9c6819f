import NIOPosix

/// Runs a blocking system call (or a blocking library call: libarchive, libav, fsync) on NIO's thread pool, never
/// on the cooperative pool or an event loop, whose few threads would otherwise stall the whole process while a
/// scratched disc takes seconds to fail a read. The one place every module sends its blocking work.
public func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(work)
}
