/// The version the programs report (`--version`) and record in the `workers` table.
public enum PipelineVersion {
    public static let current = "0.1.0"
}
