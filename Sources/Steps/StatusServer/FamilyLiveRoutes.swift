import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PipelineCore
import ServiceLifecycle
import Synchronization

/// Live progress on a source's page by Server-Sent Events: `GET /api/sources/{label}/events` sends an event
/// `progress` (JSON: the files per state, the verdict's headline, whether it is safe) at once and then whenever it
/// changes (the catalog is read every `interval`), with a comment line every 15 s so that proxies keep the
/// connection. A stream lasts at most `maxDuration` and ends on the server's graceful shutdown; the browser's
/// EventSource reconnects by itself. `/static/live.js` is the page's few lines of script.
enum FamilyLiveRoutes {
    static let interval: Duration = .seconds(2)
    static let maxDuration: Duration = .seconds(300)

    static func add(to router: Router<StatusRequestContext>, auth: FamilyAuth, family: FamilyCatalog) {
        router.get("/api/sources/:label/events") { request, context -> Response in
            guard let user = try await auth.caller(request) else { return FamilyRoutes.unauthorized() }
            guard let label = try context.parameters.require("label").removingPercentEncoding,
                try await family.overview(ofSource: label, visibleTo: user) != nil
            else { return FamilyRoutes.notFound() }
            var headers: HTTPFields = [.contentType: "text/event-stream"]
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                let started = ContinuousClock.now
                var last: String?
                var lastWrite = ContinuousClock.now
                // Ends by itself after maxDuration, when the server shuts down gracefully, or when the person
                // (or their access) goes: a source they can no longer see ends the stream.
                let stopping = Atomic<Bool>(false)
                await withGracefulShutdownHandler {
                    do {
                        while ContinuousClock.now - started < maxDuration, !stopping.load(ordering: .relaxed) {
                            guard let overview = try await family.overview(ofSource: label, visibleTo: user) else { return }
                            let event = progressJSON(overview)
                            if event != last {
                                try await writer.write(ByteBuffer(string: "event: progress\ndata: \(event)\n\n"))
                                (last, lastWrite) = (event, .now)
                            } else if ContinuousClock.now - lastWrite >= .seconds(15) {
                                try await writer.write(ByteBuffer(string: ": still here\n\n"))
                                lastWrite = .now
                            }
                            try await Task.sleep(for: interval)
                        }
                    } catch {
                        // The client went away (a write failed) or the task was cancelled: nothing to answer.
                    }
                } onGracefulShutdown: {
                    stopping.store(true, ordering: .relaxed)
                }
                try? await writer.finish(nil)
            })
        }
        router.get("/static/live.js") { _, _ -> Response in
            var response = Response.text(liveScript, contentType: "text/javascript; charset=utf-8")
            response.headers[.cacheControl] = "no-store"
            return response
        }
    }

    /// One line of JSON (SSE data may not span lines unprefixed).
    static func progressJSON(_ overview: FamilySourceOverview) -> String {
        let verdict = BrowsePages.verdict(overview)
        let object: [String: Any] = [
            "states": overview.states, "files": overview.states.values.reduce(0, +), "safe": verdict.safe, "verdict": verdict.headline,
            "in_flight": overview.completion.inFlight,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Updates the page's state line and verdict headline from the stream; without script the page still works
    /// (reload to refresh).
    static let liveScript = """
        "use strict";
        (function () {
          var live = document.getElementById("live");
          if (!live || !window.EventSource) { return; }
          var source = new EventSource(live.getAttribute("data-events"));
          source.addEventListener("progress", function (event) {
            var data = JSON.parse(event.data);
            var states = Object.keys(data.states).sort().map(function (key) { return key + " " + data.states[key]; }).join(", ");
            document.getElementById("live-states").textContent = states;
            var verdict = document.getElementById("verdict");
            if (verdict) {
              var headline = verdict.querySelector("strong");
              if (headline && headline.textContent !== data.verdict) {
                headline.textContent = data.verdict;
                verdict.className = data.safe ? "safe" : "not-safe";
                live.textContent = "The page changed since it was loaded: reload it for the details.";
              }
            }
          });
        })();
        """
}
