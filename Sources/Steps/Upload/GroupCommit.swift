/// Runs requests in batches, group-commit style: the first request starts a batch at once, and whatever arrives
/// while it runs goes into the next one. A lone request waits no longer than its own batch; many concurrent ones
/// share one database round trip (and, for writes, one commit and its WAL flush) instead of paying one each.
///
/// `run` gets the batch in arrival order and returns one result per request, in the same order; if it throws,
/// every request of that batch gets the error.
actor GroupCommit<Request: Sendable, Response: Sendable> {
    private let maxBatch: Int
    private let run: @Sendable ([Request]) async throws -> [Response]
    private var waiting: [(request: Request, continuation: CheckedContinuation<Response, any Error>)] = []
    private var running = false

    init(maxBatch: Int = 256, run: @escaping @Sendable ([Request]) async throws -> [Response]) {
        self.maxBatch = maxBatch
        self.run = run
    }

    /// Returns once the batch holding `request` has run.
    func submit(_ request: Request) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append((request, continuation))
            if !running {
                running = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !waiting.isEmpty {
            let batch = Array(waiting.prefix(maxBatch))
            waiting.removeFirst(batch.count)
            do {
                let responses = try await run(batch.map(\.request))
                precondition(responses.count == batch.count, "one response per request")
                for (entry, response) in zip(batch, responses) { entry.continuation.resume(returning: response) }
            } catch {
                for entry in batch { entry.continuation.resume(throwing: error) }
            }
        }
        running = false
    }
}
