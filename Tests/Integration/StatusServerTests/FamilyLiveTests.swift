import Accounts
import AsyncHTTPClient
import Catalog
import Foundation
import NIOCore
import NIOHTTP1
import PipelineCore
import PostgresNIO
import StatusServer
import SystemIO
import Testing
import TestSupport

/// Live progress by Server-Sent Events: the stream on a real socket (an event at once, another when the catalog
/// changes; 401 without a caller, 404 for another member), and the source page in headless Chromium updating its
/// state line without a reload.
@Suite("family pages: live updates (Server-Sent Events)")
struct FamilyLiveTests {
    static let password = "a long enough password"

    static func setUp(_ client: PostgresClient) async throws -> (alice: String, bob: String, source: Int64) {
        let accounts = AccountService(client: client, logger: logger)
        let alice = try await accounts.addUser(name: "alice", role: .member, password: Secret(Self.password))
        _ = try await accounts.addUser(name: "bob", role: .member, password: Secret(Self.password))
        let source = try await scalar(client, "INSERT INTO sources (label, owner_id) VALUES ('Live one', \(alice.id)) RETURNING id", as: Int64.self)
        for index in 0..<2 { _ = try await FamilyBrowseTests.insertFile(client, source: source, path: "f\(index).txt", state: "staged") }
        return (try await accounts.issueToken(userName: "alice", tokenName: "t").revealed,
                try await accounts.issueToken(userName: "bob", tokenName: "t").revealed, source)
    }

    static func archiveAll(_ client: PostgresClient, source: Int64) async throws {
        try await exec(client, """
            UPDATE objectstoragefiles SET state = 'archived', storage = 'archive', archive_key = 'files/' || id, archived_at = now() WHERE source_id = \(source);
            UPDATE sources SET finished_at = now() WHERE id = \(source)
            """)
    }

    @Test("the event stream: progress at once, again when the files are archived; 401 without a caller, 404 for another member")
    func stream() async throws {
        try await withCatalog { _, client in
            let (alice, bob, source) = try await Self.setUp(client)
            try await withStatusServer(try testConfiguration(), client: client) { base in
                let url = base + "/api/sources/Live%20one/events"
                #expect(try await request(url).status == 401)
                #expect(try await request(url, headers: [("Authorization", "Bearer " + bob)]).status == 404)

                var events = HTTPClientRequest(url: url)
                events.headers.add(name: "Authorization", value: "Bearer " + alice)
                let response = try await testHTTPClient.execute(events, deadline: .now() + .seconds(60))
                #expect(response.status.code == 200)
                #expect(response.headers["Content-Type"].first == "text/event-stream")
                var body = response.body.makeAsyncIterator()
                var text = ""
                func nextEvent() async throws -> [String: Any] {
                    while true {
                        if let end = text.range(of: "\n\n") {
                            let block = String(text[..<end.lowerBound])
                            text.removeSubrange(..<end.upperBound)
                            guard block.hasPrefix("event: progress"), let line = block.split(separator: "\n").first(where: { $0.hasPrefix("data: ") }) else { continue }
                            return try jsonObject(String(line.dropFirst(6)))
                        }
                        guard let chunk = try await body.next() else { throw TestFailure("the stream ended: \(text)") }
                        text += String(buffer: chunk)
                    }
                }
                let first = try await nextEvent()
                #expect((first["states"] as? [String: Any])?["staged"] as? Int == 2, "\(first)")
                #expect(first["safe"] as? Bool == false)
                try await Self.archiveAll(client, source: source)
                let second = try await nextEvent()
                #expect((second["states"] as? [String: Any])?["archived"] as? Int == 2, "\(second)")
                #expect(second["verdict"] as? String == "Archived, not yet audited.", "\(second)")
            }
        }
    }

    @Test("in headless Chromium: the source page's state line follows the catalog without a reload")
    func pageUpdates() async throws {
        let chromium = try #require(BrowserTests.chromium, "Chromium is not installed: apt-get install chromium")
        try await withCatalog { _, client in
            let (_, _, source) = try await Self.setUp(client)
            try await withStatusServer(try testConfiguration(), client: client) { base in
                let work = try TemporaryDirectory("sse")
                defer { work.remove() }
                try Self.driver.write(toFile: work.path + "/drive.py", atomically: true, encoding: .utf8)
                let running = try Program.start("/usr/bin/timeout", ["90", "/usr/bin/python3", work.path + "/drive.py", chromium, base, work.path + "/profile", "alice", Self.password])
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline, !running.outputSoFar().contains("loaded="), kill(running.processID, 0) == 0 {
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(running.outputSoFar().contains("loaded=staged 2"), "\(running.outputSoFar().suffix(2000))")
                try await Self.archiveAll(client, source: source)
                let result = try await running.wait()
                #expect(result.status == 0, "\(result.output.suffix(2000))")
                #expect(result.output.contains("updated=archived 2"), "\(result.output.suffix(2000))")
                #expect(result.output.contains("verdict=Archived, not yet audited."), "\(result.output.suffix(2000))")
                #expect(result.output.contains("reloaded=false"), "the page was not reloaded")
            }
        }
    }

    static let driver = BrowserLoginTests.driver
        .components(separatedBy: "try:\n    session = log_in()")[0] + #"""
        try:
            session = log_in()
            send("Page.navigate", {"url": base + "/sources/Live%20one"}, session)
            time.sleep(0.5)
            wait_for(session, "document.readyState === 'complete' && !!document.getElementById('live-states')")
            evaluate(session, "window.__marker = 'same page'; true")
            print("loaded=" + evaluate(session, "document.getElementById('live-states').textContent"), flush=True)
            wait_for(session, "document.getElementById('live-states').textContent.indexOf('archived') >= 0", 40)
            print("updated=" + evaluate(session, "document.getElementById('live-states').textContent"))
            wait_for(session, "document.querySelector('#verdict strong').textContent.indexOf('Archived') === 0", 20)
            print("verdict=" + evaluate(session, "document.querySelector('#verdict strong').textContent"))
            print("reloaded=" + str(evaluate(session, "window.__marker !== 'same page'")).lower())
        finally:
            proc.kill(); proc.wait()
        """#
}
