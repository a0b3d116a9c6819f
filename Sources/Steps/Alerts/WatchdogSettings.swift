/// How the watchdog decides and how often it looks.
public struct WatchdogSettings: Sendable {
    /// How often the watchdog looks for events.
    public var interval: Duration
    /// A worker whose heartbeat is older than this (and that did not stop cleanly) is dead. Workers heartbeat every
    /// lease/3 (10 s by default), so 35 s is three missed heartbeats; with a 5 s interval a crash is noticed
    /// within 40 s and posted right after, leaving 20 s of the promised minute to a status server that is busy.
    public var deadAfter: Duration
    /// Workers silent for longer than this are old history, not news: no alert on a first start against an old
    /// catalog.
    public var ignoreOlderThan: Duration
    /// A lease expired for longer than this is reported as reclaimable.
    public var leaseGrace: Duration
    /// How often undelivered alerts are looked at (new ones are sent right after the watchdog's pass).
    public var deliveryInterval: Duration
    /// More undelivered alerts than this of one kind go out as one summary message (no storms).
    public var summariseAbove: Int

    public init(
        interval: Duration = .seconds(5), deadAfter: Duration = .seconds(35), ignoreOlderThan: Duration = .seconds(24 * 3600),
        leaseGrace: Duration = .seconds(5), deliveryInterval: Duration = .seconds(5), summariseAbove: Int = 5
    ) {
        self.interval = interval
        self.deadAfter = deadAfter
        self.ignoreOlderThan = ignoreOlderThan
        self.leaseGrace = leaseGrace
        self.deliveryInterval = deliveryInterval
        self.summariseAbove = summariseAbove
    }
}
