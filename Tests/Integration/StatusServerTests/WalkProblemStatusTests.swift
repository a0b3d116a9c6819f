import Catalog
import Foundation
import Logging
import PostgresNIO
import StatusServer
import Testing
import TestSupport
import Alerts

/// A source whose every catalogued file is archived, but whose last upload could not read some of its paths: the
/// status page, its JSON and the watchdog must not call it archived until a run sees all of it.
@Suite("status and alerts for a source the upload could not read completely")
struct WalkProblemStatusTests {
    static let problems = [
        WalkProblem(path: "VIDEO_TS", problem: "directory not readable: Input/output error"),
        WalkProblem(path: "extras/<b>menu</b>.txt", problem: "cannot inspect: Input/output error"),
    ]

    /// Source 1 "scratched disc": one file, archived; the upload's walk problems as the uploader records them.
    static func insertSource(_ client: PostgresClient) async throws {
        try await exec(client, """
            INSERT INTO sources (label, finished_at) VALUES ('scratched disc', now());
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, state, archive_key, archived_at)
            VALUES (1, 'a', 'a.txt', 'regular', 100, lpad('a1', 64, '0'), 'archive', 'ka', 'archived', 'arch/a', now())
            """)
        try await IngestCatalog(client: client, logger: logger).recordWalkProblems(sourceID: 1, problems)
    }

    @Test("no 'fully archived' alert, an incomplete source on the page and in the JSON, until a complete run clears the problems")
    func incompleteSource() async throws {
        try await withCatalog { _, client in
            try await Self.insertSource(client)
            let watchdog = AlertWatchdog(client: client, settings: WatchdogSettings(), webhookURL: nil, logger: logger)
            #expect(try await watchdog.pass() == 0, "a source with walk problems is not fully archived")
            #expect(try await scalar(client, "SELECT count(*) FROM alerts", as: Int64.self) == 0)

            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let json = try jsonObject(try await request(base + "/api/status").body)
                let source = try #require((json["sources"] as? [[String: Any]])?.first)
                #expect(source["complete"] as? Bool == false)
                #expect(int64(source["walk_problems"]) == 2)
                #expect((source["walk_problem_paths"] as? [String]) == [
                    "VIDEO_TS: directory not readable: Input/output error", "extras/<b>menu</b>.txt: cannot inspect: Input/output error",
                ])
                let page = try await request(base + "/").body
                #expect(page.contains("badge bad\">incomplete</span>"))
                #expect(page.contains("2 paths could not be read"))
                #expect(page.contains("extras/&lt;b&gt;menu&lt;/b&gt;.txt: cannot inspect"), "paths are escaped")
                #expect(!page.contains("badge ok\">archived</span>"))
            }

            // The next run of the source saw everything: its (empty) problems replace the old ones.
            try await IngestCatalog(client: client, logger: logger).recordWalkProblems(sourceID: 1, [])
            #expect(try await watchdog.pass() == 1)
            let message = try await scalar(client, "SELECT message FROM alerts WHERE kind = 'source-archived'", as: String.self)
            #expect(message.hasPrefix("scratched disc is fully archived"))
            let completion = try await SourceCompletion.read(label: "scratched disc", client: client, logger: logger)
            #expect(completion.isFullyArchived)
        }
    }
}
