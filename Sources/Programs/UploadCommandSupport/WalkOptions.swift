import ArgumentParser
import Upload

/// How `uploader upload` and `pipeline run` treat git work trees and files unchanged since the last run (and the local
/// index that recognises those).
public struct WalkOptions: ParsableArguments {
    @Flag(name: .customLong("no-gitignore"), help: "In git work trees, keep what git ignores too (by default it is left out and counted).")
    var noGitIgnore = false

    @Flag(name: .customLong("git-as-files"), help: "Store git repositories file by file (by default each is kept whole as one file: a verified bundle and the rest of .git).")
    var gitAsFiles = false

    @Option(name: .customLong("check-unchanged"), help: ArgumentHelp(
        "Read this percentage of the files unchanged by size and time again, to catch bit rot on the original (a rolling sample: every file within 100/PERCENT runs).",
        valueName: "percent"))
    var checkUnchanged: Int = 0

    @Flag(name: .customLong("no-index"), help: "Do not trust the local index of the last run: ask the catalog about every file (a fresh index is still written).")
    var noIndex = false

    public init() {}

    public func validate() throws {
        guard (0...100).contains(checkUnchanged) else { throw ValidationError("--check-unchanged is a percentage, 0 to 100") }
    }

    /// Sets the run's walk settings from the flags.
    public func apply(to configuration: inout UploadConfiguration) {
        configuration.respectGitIgnore = !noGitIgnore
        configuration.keepGitRepositoriesWhole = !gitAsFiles
        configuration.checkUnchangedPercent = checkUnchanged
        configuration.useLocalIndex = !noIndex
    }
}
