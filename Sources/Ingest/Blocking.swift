import NIOPosix

/// Runs a blocking system or libarchive call on NIO's thread pool, never on the cooperative pool (whose few
/// threads would otherwise stall the whole process while a scratched disc takes seconds to fail a read).
@inline(__always)
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(work)
}
