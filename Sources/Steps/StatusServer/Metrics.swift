import Foundation
import Catalog

/// The snapshot in the Prometheus text exposition format (version 0.0.4), written by hand: every figure is a gauge
/// read from the catalog, so a metrics library would add nothing but a registry to keep in sync.
enum PrometheusExposition {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func render(_ s: StatusSnapshot) -> String {
        var writer = Writer()
        func family(_ name: String, _ help: String) { writer.family(name, help) }
        func sample(_ name: String, _ labels: [(String, String)], _ value: Double) { writer.sample(name, labels, value) }
        func single(_ name: String, _ value: Double) { writer.sample(name, [], value) }

        family("backup_files", "Files in the catalog by state.")
        for state in StatusPage.stateOrder { sample("backup_files", [("state", state)], Double(s.filesByState[state] ?? 0)) }
        family("backup_bytes", "Original bytes of the files in the catalog by state.")
        for state in StatusPage.stateOrder { sample("backup_bytes", [("state", state)], Double(s.bytesByState[state] ?? 0)) }
        family("backup_files_total", "Files known to the catalog.")
        single("backup_files_total", Double(s.filesTotal))
        family("backup_bytes_raw", "Original bytes of every file known.")
        single("backup_bytes_raw", Double(s.bytesRaw))
        family("backup_bytes_stored", "Bytes the archived files take in the archive (after transcoding).")
        single("backup_bytes_stored", Double(s.bytesStored))
        family("backup_bytes_saved", "Bytes not stored thanks to transcoding, dedupe and bundle compression.")
        sample("backup_bytes_saved", [("reason", "transcoding")], Double(s.bytesSavedTranscoding))
        sample("backup_bytes_saved", [("reason", "dedupe")], Double(s.bytesSavedDedupe))
        sample("backup_bytes_saved", [("reason", "compression")], Double(s.bytesSavedCompression))
        family("backup_progress_ratio", "Share of known bytes that are archived or duplicates (0 to 1).")
        single("backup_progress_ratio", s.progress)
        family("backup_archive_rate_bytes_per_second", "Bytes archived per second over the recent window.")
        single("backup_archive_rate_bytes_per_second", s.bytesPerSecond)
        if let eta = s.etaSeconds {
            family("backup_eta_seconds", "Estimated seconds until everything known is archived, at the recent rate.")
            single("backup_eta_seconds", eta)
        }

        family("backup_source_files", "Files of a source by state.")
        for source in s.sources {
            for state in StatusPage.stateOrder where (source.filesByState[state] ?? 0) > 0 {
                sample("backup_source_files", [("source", source.label), ("state", state)], Double(source.filesByState[state] ?? 0))
            }
        }
        family("backup_source_progress_ratio", "Share of a source's bytes that are archived or duplicates (0 to 1).")
        for source in s.sources { sample("backup_source_progress_ratio", [("source", source.label)], source.progress) }

        family("backup_workers", "Workers seen in the last day by role and status (alive, dead, stopped).")
        var workerCounts: [String: [String: Int]] = [:]
        for worker in s.workers { workerCounts[worker.role, default: [:]][worker.status.rawValue, default: 0] += 1 }
        for (role, statuses) in workerCounts.sorted(by: { $0.key < $1.key }) {
            for status in ["alive", "dead", "stopped"] {
                sample("backup_workers", [("role", role), ("status", status)], Double(statuses[status] ?? 0))
            }
        }
        family("backup_worker_heartbeat_age_seconds", "Seconds since a running worker's last heartbeat.")
        for worker in s.workers where worker.stoppedAt == nil {
            sample("backup_worker_heartbeat_age_seconds", [("worker", worker.id.uuidString.lowercased()), ("role", worker.role), ("host", worker.host)], worker.heartbeatAgeSeconds)
        }
        family("backup_alerts_undelivered", "Alerts recorded but not yet delivered to the webhook.")
        single("backup_alerts_undelivered", Double(s.alertsUndelivered))
        family("backup_status_query_seconds", "Time the status server took to read the catalog for this snapshot.")
        single("backup_status_query_seconds", s.queryMilliseconds / 1000)
        return writer.out
    }

    struct Writer {
        var out = ""

        mutating func family(_ name: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
        }

        mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
            let labelText = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(PrometheusExposition.escape($0.1))\"" }.joined(separator: ",") + "}"
            out += "\(name)\(labelText) \(PrometheusExposition.number(value))\n"
        }
    }

    static func escape(_ value: String) -> String {
        var result = ""
        for character in value {
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result
    }

    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
