import Foundation
import Logging
import NIOCore
import PipelineCore
import Synchronization

/// Paces every S3 transfer of one process: one token bucket per direction, shared by all parallel parts and
/// objects of every store opened with it (not one per connection), and the `--window`s in which a new part or
/// object may start. Made once per process (`ObjectStoreSettings.throttle`); nil costs nothing.
public final class TransferThrottle: Sendable {
    public let limits: TransferLimits
    /// nil when the schedule never limits that direction: bodies are then sent as before, without metering.
    let upload: TokenBucket?
    let download: TokenBucket?
    private let logger: Logger
    private let now: @Sendable () -> Date
    /// Until when the windows are known to be open (so that most checks skip the calendar), and whether a pause
    /// was announced.
    private let windowState = Mutex<(openUntil: Date?, announcedPause: Date?)>((nil, nil))

    /// nil when `limits` neither meter nor pause anything.
    public static func make(_ limits: TransferLimits, logger: Logger) -> TransferThrottle? {
        limits.isUnlimited ? nil : TransferThrottle(limits, logger: logger)
    }

    init(_ limits: TransferLimits, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.limits = limits
        self.logger = logger
        self.now = now
        let schedule = limits.bandwidth
        let zone = limits.timeZone
        upload = schedule.limitsUploads ? TokenBucket(now: now) { date in
            (schedule.limit(at: date, in: zone).upload, schedule.nextChange(after: date, in: zone))
        } : nil
        download = schedule.limitsDownloads ? TokenBucket(now: now) { date in
            (schedule.limit(at: date, in: zone).download, schedule.nextChange(after: date, in: zone))
        } : nil
    }

    /// Returns when a new transfer may start: at once inside a window, else when the next one opens. The first
    /// caller of a pause logs "paused until HH:MM" once; a transfer already under way is never stopped here.
    func waitForWindow() async throws {
        let windows = limits.windows
        guard !windows.isAlwaysOpen else { return }
        while true {
            let date = now()
            if windowState.withLock({ $0.openUntil.map { date < $0 } ?? false }) { return }
            let zone = limits.timeZone
            if windows.isOpen(at: date, in: zone) {
                let closing = windows.nextClosing(after: date, in: zone) ?? .distantFuture
                let resumed = windowState.withLock { state in
                    defer { state = (closing, nil) }
                    return state.announcedPause != nil
                }
                if resumed { logger.notice("transfer window open: resuming", metadata: ["transfer.window_closes": "\(Format.wallTime(closing, now: date, timeZone: zone))"]) }
                return
            }
            let opening = windows.nextOpening(after: date, in: zone)
            let announce = windowState.withLock { state in
                defer { state = (nil, opening) }
                return state.announcedPause != opening
            }
            if announce {
                logger.notice("paused until \(Format.wallTime(opening, now: date, timeZone: zone)): outside every transfer window (\(windows.windows.map(\.description).joined(separator: ", ")))")
            }
            // Looked at again at least every minute, so that a wall clock set forward or back is noticed.
            let wait = min(max(opening.timeIntervalSince(date), 0.01), 60)
            try await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
        }
    }

    /// The slowest rate a request may see (for its deadline): nil without a limit in that direction.
    func lowestRate(uploading: Bool) -> Int? {
        uploading ? (upload == nil ? nil : limits.bandwidth.lowestUploadRate) : (download == nil ? nil : limits.bandwidth.lowestDownloadRate)
    }
}

/// A token bucket as a virtual clock (GCRA): each grant moves `due` forward by bytes ÷ rate, and the caller sleeps
/// until its grant is due, so concurrent callers share the rate in the order they asked, in slices of at most
/// 64 KiB (smaller at low rates) for a smooth rate. An oversleep is made up by the next grants (up to one slice of
/// credit), so timer slack does not lower the rate. The rate is looked up from the schedule when it may have
/// changed, at most every 30 s otherwise.
final class TokenBucket: Sendable {
    typealias RateLookup = @Sendable (Date) -> (rate: Int?, nextChange: Date?)

    private struct State {
        var due: ContinuousClock.Instant
        var rate: Int?
        var recheckAt: ContinuousClock.Instant
    }

    private let state: Mutex<State>
    private let lookup: RateLookup
    private let now: @Sendable () -> Date

    init(now: @escaping @Sendable () -> Date, lookup: @escaping RateLookup) {
        self.lookup = lookup
        self.now = now
        let start = ContinuousClock.now
        state = Mutex(State(due: start, rate: nil, recheckAt: start))
    }

    static func slice(rate: Int) -> Int { min(64 << 10, max(4 << 10, rate / 16)) }

    /// Waits until up to `wanted` bytes may pass and returns how many (at least 1).
    func grant(upTo wanted: Int) async throws -> Int {
        let clock = ContinuousClock()
        let (granted, due) = state.withLock { state -> (Int, ContinuousClock.Instant?) in
            let instant = clock.now
            if instant >= state.recheckAt {
                let date = now()
                let (rate, change) = lookup(date)
                if rate != state.rate { state.due = instant }
                state.rate = rate
                let untilChange = change.map { max(0.05, $0.timeIntervalSince(date)) } ?? 30
                state.recheckAt = instant + .milliseconds(Int64(min(untilChange, 30) * 1000))
            }
            guard let rate = state.rate else { return (wanted, nil) }
            let slice = Self.slice(rate: rate)
            let bytes = max(1, min(wanted, slice))
            let credit = Duration.nanoseconds(Int64(slice) * 1_000_000_000 / Int64(rate))
            let start = max(state.due, instant - credit)
            state.due = start + .nanoseconds(Int64(bytes) * 1_000_000_000 / Int64(rate))
            return (bytes, state.due)
        }
        if let due, due > clock.now { try await Task.sleep(until: due, clock: clock) }
        return granted
    }

    /// Waits until `count` bytes may pass, slice by slice.
    func take(_ count: Int) async throws {
        var left = count
        while left > 0 { left -= try await grant(upTo: left) }
    }
}

/// A request body held in memory, handed to the HTTP client one granted slice at a time (views into the buffer,
/// no copies), so the bucket paces the socket writes.
struct ThrottledBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let body: ByteBuffer
    let bucket: TokenBucket

    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: ByteBuffer
        let bucket: TokenBucket

        mutating func next() async throws -> ByteBuffer? {
            guard rest.readableBytes > 0 else { return nil }
            let count = try await bucket.grant(upTo: rest.readableBytes)
            return rest.readSlice(length: count)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: body, bucket: bucket) }
}
