import CLibAV

extension LibAV {
    /// libav's own log levels (`AV_LOG_*`).
    public enum LogLevel: Int32, Sendable {
        case quiet = -8
        case panic = 0
        case fatal = 8
        case error = 16
        case warning = 24
        case info = 32
        case verbose = 40
        case debug = 48
    }

    /// The process-wide level below which libav prints nothing to standard error (its default is `.info`, which
    /// prints muxer and encoder statistics after every file). Services set `.error` once at start-up; it is one
    /// global in libav, so libraries and tests leave it alone.
    public static var logLevel: LogLevel {
        get { LogLevel(rawValue: av_log_get_level()) ?? .info }
        set { av_log_set_level(newValue.rawValue) }
    }
}
