import Synchronization

/// Runs `body` for every element with at most `limit` running at once; returns the results in input order.
public func concurrentMap<Element: Sendable, Result: Sendable>(
    _ elements: [Element], limit: Int, _ body: @escaping @Sendable (Element) async -> Result
) async -> [Result] {
    await withTaskGroup(of: (Int, Result).self) { group in
        var results = [Result?](repeating: nil, count: elements.count)
        var next = 0
        for _ in 0..<min(limit, elements.count) {
            let index = next
            group.addTask { (index, await body(elements[index])) }
            next += 1
        }
        for await (index, result) in group {
            results[index] = result
            if next < elements.count {
                let index = next
                group.addTask { (index, await body(elements[index])) }
                next += 1
            }
        }
        return results.map { $0! }
    }
}

/// Runs `body` in an unstructured task and returns its result, or `fallback` after `timeout` without waiting for
/// `body` (which is cancelled and left to finish on its own).
public func firstOf<T: Sendable>(timeout: Duration, fallback: T, _ body: @escaping @Sendable () async -> T) async -> T {
    let once = LockedBox<CheckedContinuation<T, Never>?>(nil)
    let work = LockedBox<[Task<Void, Never>]>([])
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        _ = once.exchange(continuation)
        let finish: @Sendable (T) -> Void = { value in once.exchange(nil)?.resume(returning: value) }
        let tasks = [
            Task { finish(await body()) },
            Task {
                try? await Task.sleep(for: timeout)
                finish(fallback)
            },
        ]
        _ = work.exchange(tasks)
    }
    for task in work.exchange([]) { task.cancel() }
    return result
}

/// One value behind a `Mutex`, for state that several tasks share (set by one, read by another).
public final class LockedBox<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    public init(_ value: Value) { storage = Mutex(value) }

    public var value: Value {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }

    /// Sets a new value and returns the old one, in one step.
    public func exchange(_ newValue: Value) -> Value {
        storage.withLock { value in
            let old = value
            value = newValue
            return old
        }
    }

    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try storage.withLock { value in try body(&value) }
    }
}
