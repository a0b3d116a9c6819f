import Foundation
import Instrumentation
import Logging
import Metrics
import OTel
import ServiceLifecycle

/// Optional OTLP export of logs, metrics and traces (swift-otel), switched on by the standard OpenTelemetry
/// environment: `OTEL_EXPORTER_OTLP_ENDPOINT` (or a per-signal `OTEL_EXPORTER_OTLP_{LOGS,METRICS,TRACES}_ENDPOINT`),
/// with `OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf` (default) or `http/json`, `OTEL_EXPORTER_OTLP_HEADERS`,
/// `OTEL_SERVICE_NAME`, `OTEL_METRIC_EXPORT_INTERVAL` and the rest of the specification's settings.
/// Without an endpoint nothing is set up and nothing leaves the machine.
public struct Telemetry: Sendable {
    /// The OTLP log handler, to run beside the JSON or text handler (logs still go to stdout/stderr).
    public let logHandler: @Sendable (String) -> any LogHandler
    /// The exporters' background work: run them in the program's service group (first, so they stop last and
    /// flush what the other services logged on the way out).
    public let services: [any Service]

    static let endpointVariables = [
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]

    /// Whether the environment asks for OTLP export.
    public static func isRequested(in environment: [String: String]) -> Bool {
        endpointVariables.contains { !(environment[$0] ?? "").isEmpty } && environment["OTEL_SDK_DISABLED"]?.lowercased() != "true"
    }

    /// Sets up the three exporters and bootstraps swift-metrics and swift-distributed-tracing with them (the
    /// caller bootstraps logging with `logHandler`). Returns nil when no endpoint is configured. Call once per process.
    public static func start(serviceName: String, version: String, environment: [String: String]) throws(TelemetryError) -> Telemetry? {
        guard isRequested(in: environment) else { return nil }
        // swift-otel ignores a value it cannot use (with a warning) and carries on; a setting that names a
        // collector must either work or be refused.
        for signal in ["", "_LOGS", "_METRICS", "_TRACES"] {
            let protocolVariable = "OTEL_EXPORTER_OTLP\(signal)_PROTOCOL"
            if let value = environment[protocolVariable], !value.isEmpty, !["http/protobuf", "http/json"].contains(value) {
                throw TelemetryError(setting: protocolVariable, message: "'\(value)' is not supported here; use http/protobuf (the default) or http/json")
            }
            let endpointVariable = "OTEL_EXPORTER_OTLP\(signal)_ENDPOINT"
            if let value = environment[endpointVariable], !value.isEmpty {
                guard let url = URL(string: value), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                    throw TelemetryError(setting: endpointVariable, message: "must be an http:// or https:// URL of an OTLP/HTTP collector")
                }
            }
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.resourceAttributes["service.version"] = version
        configuration.resourceAttributes["service.namespace"] = "personal-backup"
        // swift-otel's own diagnostics (an unreachable collector, say) go to stderr, never into the JSON on stdout.
        configuration.diagnosticLogger = .custom(Logger(label: "personal-backup.otel") { StreamLogHandler.standardError(label: $0) })
        configuration.diagnosticLogLevel = .warning
        do {
            let logs = try OTel.makeLoggingBackend(configuration: configuration)
            let metrics = try OTel.makeMetricsBackend(configuration: configuration)
            let traces = try OTel.makeTracingBackend(configuration: configuration)
            MetricsSystem.bootstrap(metrics.factory)
            InstrumentationSystem.bootstrap(traces.factory)
            return Telemetry(logHandler: logs.factory, services: [logs.service, metrics.service, traces.service])
        } catch {
            throw TelemetryError(setting: "OTEL_EXPORTER_OTLP_ENDPOINT", message: "\(error)")
        }
    }
}

/// The OpenTelemetry settings could not be used (an unsupported protocol, a malformed endpoint or header).
public struct TelemetryError: Error, Sendable, CustomStringConvertible {
    /// The environment variable at fault.
    public let setting: String
    public let message: String
    public var description: String { "\(setting): \(message)" }
}
