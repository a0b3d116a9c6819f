import Foundation
import NIOCore
import NIOPosix

/// The size of NIO's shared thread pool, where every blocking file call runs (reads, writes, fsyncs).
public enum BlockingThreadPool {
    /// Gives programs that mostly wait on disks more threads than cores. NIO's default is one per core, and on a
    /// two-core machine two fsyncs or direct writes in flight stalled every other read and hash behind them: the
    /// benchmark tree took 16.5 s with 2 threads and 9.8 s with 8 (docs/benchmarks.md). Call first thing in
    /// `main`, before anything uses NIO. `NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT` still wins when set.
    public static func sizeForFileIO(minimumThreads: Int = 8) {
        guard ProcessInfo.processInfo.environment["NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT"] == nil else { return }
        NIOSingletons.blockingPoolThreadCountSuggestion = max(minimumThreads, System.coreCount)
    }
}
