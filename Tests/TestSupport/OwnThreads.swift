import Foundation
import Testing

/// Runs each test of a suite, and the child tasks it starts, on threads of its own instead of Swift's cooperative
/// pool. That pool has as many threads as cores (two on these machines) and every test of the process shares it:
/// a test that blocks a thread for seconds (an in-process libav transcode, an ffmpeg fixture waited for with
/// `Process.waitUntilExit`) stalls all the others, and a lease renewal or a watchdog pass in another test misses
/// its deadline. So two kinds of suite carry this trait: those that block (so that they starve no one) and those
/// with deadlines measured in-process (so that no one starves them).
public struct OnOwnThreads: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(OwnThreadsExecutor.shared) { try await function() }
    }
}

extension Trait where Self == OnOwnThreads {
    /// The test's code and its child tasks run on threads of their own, not on the shared cooperative pool.
    public static var onOwnThreads: Self { Self() }
}

/// A task executor over a pool of threads that grows whenever a job arrives and no thread is idle, so a job never
/// waits behind one that blocks. Threads stay for the next jobs (a test process needs a few dozen at most).
public final class OwnThreadsExecutor: TaskExecutor, @unchecked Sendable {
    public static let shared = OwnThreadsExecutor()

    /// Guards `queue`, `head` and `idle`.
    private let condition = NSCondition()
    private var queue: [UnownedJob] = []
    private var head = 0
    private var idle = 0

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        queue.append(job)
        let waiting = queue.count - head
        if waiting > idle {
            startThread()
        } else {
            condition.signal()
        }
        condition.unlock()
    }

    private func startThread() {
        let thread = Thread { [self] in
            let executor = asUnownedTaskExecutor()
            while true {
                condition.lock()
                while head == queue.count {
                    idle += 1
                    condition.wait()
                    idle -= 1
                }
                let job = queue[head]
                head += 1
                if head > 1024 && head * 2 > queue.count {
                    queue.removeFirst(head)
                    head = 0
                }
                condition.unlock()
                job.runSynchronously(on: executor)
            }
        }
        // libav's decoders want more than Foundation's default stack for a secondary thread.
        thread.stackSize = 8 << 20
        thread.start()
    }
}
