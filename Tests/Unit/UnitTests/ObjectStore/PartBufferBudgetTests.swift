import Synchronization
import Testing
@testable import ObjectStore

@Suite("the process-wide budget of multipart part buffers")
struct PartBufferBudgetTests {
    @Test("takes what fits, refuses what does not, and gives back")
    func fitsAndRefuses() {
        let budget = PartBufferBudget(bytes: 100)
        #expect(budget.tryTake(60))
        #expect(!budget.tryTake(50))
        #expect(budget.tryTake(40))
        #expect(budget.used == 100)
        budget.give(60)
        #expect(budget.used == 40)
        #expect(budget.tryTake(50))
    }

    @Test("a waiter gets in when enough is given back, in order, and holds off later tryTakes while it waits")
    func waitersInOrder() async throws {
        let budget = PartBufferBudget(bytes: 100)
        #expect(budget.tryTake(90))
        final class Order: Sendable { let names = Mutex<[String]>([]) }
        let order = Order()
        let first = Task { await budget.take(50); order.names.withLock { $0.append("first") } }
        while !budget.hasWaiters { await Task.yield() }
        let second = Task { await budget.take(40); order.names.withLock { $0.append("second") } }
        try await Task.sleep(for: .milliseconds(50))
        #expect(order.names.withLock { $0 }.isEmpty, "nothing fits yet")
        #expect(!budget.tryTake(5), "a tryTake does not overtake the waiters")
        budget.give(90)
        await first.value
        await second.value
        #expect(order.names.withLock { $0 } == ["first", "second"])
        #expect(budget.used == 90)
    }

    @Test("a part larger than the whole budget still goes once nothing else is held")
    func oversizedPart() async {
        let budget = PartBufferBudget(bytes: 10)
        await budget.take(50)
        #expect(budget.used == 50)
        budget.give(50)
        #expect(budget.used == 0)
    }
}
