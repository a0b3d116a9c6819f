import Synchronization

/// The memory that the part buffers of all multipart uploads of one process may hold together.
///
/// Each upload is already bounded ((parts in flight + 1) × part size), but a program sends several objects at once
/// (the uploader's `--concurrency 8`, the archiver's large files and bundles): measured, 477 MiB for four large
/// files at once. So every part buffer is counted here: an upload takes a new one only while the budget has room
/// (`tryTake`), and otherwise reuses the buffer of its next part to finish; only an upload that holds no buffer at
/// all waits (`take`), and it is let through once nothing else is held, so one part larger than the whole budget
/// still goes. Every upload that holds a buffer makes progress with it, so none waits on another's.
public final class PartBufferBudget: Sendable, Hashable {
    /// What every store of a process shares unless told otherwise: four 16 MiB parts, enough to keep a home uplink
    /// or an S3 endpoint busy (measured with `bench/restore/s3`: the uploader's peak 477 MiB without a budget,
    /// 283 MiB with 128 MiB of buffers).
    public static let shared = PartBufferBudget(bytes: 64 << 20)

    public let capacity: Int
    private struct State {
        var used = 0
        var waiting: [(bytes: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())

    public init(bytes: Int) { capacity = max(1, bytes) }

    /// Bytes currently held by part buffers.
    public var used: Int { state.withLock { $0.used } }
    var hasWaiters: Bool { state.withLock { !$0.waiting.isEmpty } }

    /// Takes `bytes` if they fit now.
    func tryTake(_ bytes: Int) -> Bool {
        state.withLock { state in
            guard state.waiting.isEmpty, state.used + bytes <= capacity else { return false }
            state.used += bytes
            return true
        }
    }

    /// Takes `bytes`, waiting until they fit or nothing else is held. First come, first served.
    func take(_ bytes: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.waiting.isEmpty && (state.used + bytes <= capacity || state.used == 0) {
                    state.used += bytes
                    return true
                }
                state.waiting.append((bytes, continuation))
                return false
            }
            if granted { continuation.resume() }
        }
    }

    /// Gives `bytes` back and lets in the waiters that now fit, in order.
    func give(_ bytes: Int) {
        guard bytes > 0 else { return }
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.used -= bytes
            var woken: [CheckedContinuation<Void, Never>] = []
            while let first = state.waiting.first, state.used + first.bytes <= capacity || state.used == 0 {
                state.used += first.bytes
                woken.append(first.continuation)
                state.waiting.removeFirst()
            }
            return woken
        }
        for continuation in woken { continuation.resume() }
    }

    public static func == (lhs: PartBufferBudget, rhs: PartBufferBudget) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
