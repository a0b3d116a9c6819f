import SystemIO

/// The right to read and send one file; given back once (later calls do nothing).
final class ReadSlot: Sendable {
    private let slots: ReadSlots
    private let held = LockedBox(true)

    init(slots: ReadSlots) { self.slots = slots }

    func release() {
        if held.exchange(false) { Task { await slots.release() } }
    }
}

/// A counting semaphore: how many files are read and sent at once.
actor ReadSlots {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { available = count }

    func acquire() async -> ReadSlot {
        if available > 0 {
            available -= 1
        } else {
            await withCheckedContinuation { waiters.append($0) }
        }
        return ReadSlot(slots: self)
    }

    func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()  // the slot passes straight to the next waiter
        }
    }
}

/// Lets one file of each size be in flight at a time.
actor SameSizeGate {
    private var busy: Set<Int64> = []
    private var waiters: [Int64: [CheckedContinuation<Void, Never>]] = [:]

    func enter(_ size: Int64) async {
        while busy.contains(size) {
            await withCheckedContinuation { waiters[size, default: []].append($0) }
        }
        busy.insert(size)
    }

    func leave(_ size: Int64) {
        busy.remove(size)
        if var queue = waiters[size], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[size] = queue.isEmpty ? nil : queue
            next.resume()
        }
    }
}
