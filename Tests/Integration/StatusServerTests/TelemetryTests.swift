import SystemIO
import Catalog
import Foundation
import Testing
import TestSupport

/// Optional OTLP export: the real archiver, configured only by the standard OpenTelemetry environment, sends its
/// logs, metrics and spans to a collector on loopback (the test's HTTP receiver, speaking OTLP/HTTP with JSON).
@Suite("OTLP export")
struct TelemetryTests {
    static func otlpEnvironment(_ endpoint: String) -> [String: String] {
        [
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_METRIC_EXPORT_INTERVAL": "300", "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BLRP_SCHEDULE_DELAY": "100",
        ]
    }

    @Test("with OTEL_EXPORTER_OTLP_ENDPOINT the archiver exports logs, metrics and batch spans, and still logs JSON lines")
    func archiverExportsOTLP() async throws {
        try await withWebhookReceiver { endpoint, inbox in
            try await PipelineHarness.with(.file) { harness in
                try harness.write("docs/a.txt", "hello\n")
                try harness.write("docs/b.txt", "world\n")
                let upload = try await harness.upload(label: "Telemetry")
                #expect(upload.status == 0, "\(upload.output)")
                let archived = try await harness.archiveOnce(environment: Self.otlpEnvironment(endpoint))
                #expect(archived.status == 0, "\(archived.output)")
                // The JSON lines on stdout are unchanged by the export.
                #expect(archived.output.contains(#""message":"batch done""#), "\(archived.output)")

                let received = await inbox.received
                func bodies(_ path: String) -> String { received.filter { $0.path == path }.map(\.body).joined(separator: "\n") }
                #expect(received.allSatisfy { $0.headers["content-type"]?.hasPrefix("application/json") == true })
                let logs = bodies("/v1/logs")
                #expect(logs.contains("personal-backup-archiver"), "no service name in the exported logs")
                #expect(logs.contains("batch done"), "the 'batch done' log line was not exported: \(received.map(\.path))")
                let metrics = bodies("/v1/metrics")
                #expect(metrics.contains("backup_jobs_total"), "no backup_jobs_total metric exported: \(received.map(\.path))")
                #expect(metrics.contains("backup_batch_duration_seconds"))
                let traces = bodies("/v1/traces")
                #expect(traces.contains("archiver batch"), "no 'archiver batch' span exported: \(received.map(\.path))")
                #expect(traces.contains("backup.batch.size"))
            }
        }
    }

    @Test("an OTLP setting that cannot work is a one-line configuration error (exit 2) before any work")
    func badOTLPSettingIsAConfigurationError() async throws {
        try await PipelineHarness.with(.file) { harness in
            var environment = Self.otlpEnvironment("http://127.0.0.1:9")
            environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "carrier-pigeon"
            let archived = try await harness.archiveOnce(environment: environment)
            #expect(archived.status == 2, "\(archived.output)")
            #expect(archived.output.contains("configuration error: OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' is not supported"), "\(archived.output)")
            #expect(archived.output.split(separator: "\n").count == 1, "one line: \(archived.output)")
        }
    }
}
