import Foundation

/// Why a maintenance setting was refused. The message is one line that names the field and the allowed values.
public typealias MaintenanceError = CodedError<MaintenanceErrorCode>

public enum MaintenanceErrorCode: String, Sendable, Hashable {
    /// No task has this name (the four are fixed: tasks are never scripts).
    case unknownTask
    /// A parameter or the interval is out of range, or the audit's source label does not exist.
    case invalidSetting
    /// A task could not do its work (the message says what and why).
    case taskFailed
}

/// The scheduled maintenance tasks the archivers run between batches (issue 21). Named, with typed parameters:
/// an admin can change when they run and with what, never what they run.
public enum MaintenanceTaskName: String, Sendable, Hashable, CaseIterable, Codable {
    /// Re-reads a share of the archive objects, the ones verified longest ago first (`uploader verify --sample`).
    case verifySample = "verify-sample"
    /// Writes the whole catalog export now (`archiver export-catalog`).
    case exportCatalog = "export-catalog"
    /// Asks the archive (HEAD) about every pending or ready restore request and records what it says.
    case refreshRestoreStatus = "refresh-restore-status"
    /// The catalog and archive audit of one source or all (`uploader audit`), verdicts kept in `source_audits`.
    case audit

    public init(parsing text: String) throws(MaintenanceError) {
        guard let name = MaintenanceTaskName(rawValue: text) else {
            throw MaintenanceError(.unknownTask, "no maintenance task is named '\(text)'; the tasks are \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = name
    }

    /// What the task does, in a line for the admin page and `uploader maintenance list`.
    public var summary: String {
        switch self {
        case .verifySample: "re-read a share of the archive objects, those verified longest ago first"
        case .exportCatalog: "write the whole catalog export to the archive bucket"
        case .refreshRestoreStatus: "ask the archive about every pending or ready restore request"
        case .audit: "audit the catalog against the archive (one source or all) and record the verdicts"
        }
    }
}

/// A task's parameters, typed. Stored as a JSON object (`maintenance_tasks.parameters`); unknown keys are refused.
public struct MaintenanceParameters: Sendable, Hashable {
    /// verify-sample: the share of the archive objects re-read per run, 0 < percent ≤ 100 (default 5).
    public var percent: Double?
    /// audit: the one source to audit (nil: every source). Must be an existing label; the catalog checks that.
    public var sourceLabel: String?

    public init(percent: Double? = nil, sourceLabel: String? = nil) {
        self.percent = percent
        self.sourceLabel = sourceLabel
    }

    public static let defaultPercent = 5.0

    /// The parameters a task takes, checked: percent only for verify-sample (0 < p ≤ 100), a label only for audit.
    public static func checked(_ task: MaintenanceTaskName, percent: Double?, sourceLabel: String?) throws(MaintenanceError) -> MaintenanceParameters {
        let label = sourceLabel.map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        switch task {
        case .verifySample:
            let value = percent ?? defaultPercent
            guard value.isFinite, value > 0, value <= 100 else {
                throw MaintenanceError(.invalidSetting, "verify-sample: percent must be above 0 and at most 100, not \(numberText(value))")
            }
            guard label == nil else { throw MaintenanceError(.invalidSetting, "verify-sample takes no source label (it samples the whole archive)") }
            return MaintenanceParameters(percent: value)
        case .audit:
            guard percent == nil else { throw MaintenanceError(.invalidSetting, "audit takes no percent (it checks every file of its sources)") }
            return MaintenanceParameters(sourceLabel: label)
        case .exportCatalog, .refreshRestoreStatus:
            guard percent == nil, label == nil else { throw MaintenanceError(.invalidSetting, "\(task.rawValue) takes no parameters") }
            return MaintenanceParameters()
        }
    }

    /// From the stored JSON object; what a task does not take is ignored here (it was checked when stored).
    public init(json: String) {
        guard case .object(let members) = JSONValue.parse(json) else { self.init(); return }
        var percent: Double?
        if case .number(let value)? = members["percent"] { percent = value }
        var label: String?
        if case .string(let value)? = members["source"] { label = value }
        self.init(percent: percent, sourceLabel: label)
    }

    /// The JSON object stored in the catalog.
    public var json: String {
        var parts: [String] = []
        if let percent { parts.append("\"percent\": \(numberText(percent))") }
        if let sourceLabel { parts.append("\"source\": \(JSONText.quoted(sourceLabel))") }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    /// "percent 5", "source DVD 12", "all sources", or "" for a task without parameters.
    public func displayText(for task: MaintenanceTaskName) -> String {
        switch task {
        case .verifySample: "percent \(numberText(percent ?? Self.defaultPercent))"
        case .audit: sourceLabel.map { "source \($0)" } ?? "all sources"
        case .exportCatalog, .refreshRestoreStatus: ""
        }
    }
}

/// How often a task runs: at least a minute, at most a year (the table's CHECK says the same).
public enum MaintenanceSchedule {
    public static let shortest = 60
    public static let longest = 365 * 86_400

    public static func checked(everySeconds: Int) throws(MaintenanceError) -> Int {
        guard (shortest...longest).contains(everySeconds) else {
            throw MaintenanceError(.invalidSetting, "the interval must be between 1 minute and 365 days, not \(everySeconds) seconds")
        }
        return everySeconds
    }

    /// "every 7 days", "every 1 hour", "every 90 minutes".
    public static func text(everySeconds seconds: Int) -> String {
        let (value, unit): (Int, String) =
            seconds % 86_400 == 0 ? (seconds / 86_400, "day") : seconds % 3600 == 0 ? (seconds / 3600, "hour")
            : seconds % 60 == 0 ? (seconds / 60, "minute") : (seconds, "second")
        return "every \(value) \(unit)\(value == 1 ? "" : "s")"
    }
}

/// 5 → "5", 2.5 → "2.5".
func numberText(_ value: Double) -> String { JSONValue.number(value).displayText }
