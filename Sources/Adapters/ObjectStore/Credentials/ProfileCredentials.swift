import AsyncHTTPClient
import Foundation
import SigV4

/// The AWS shared files: `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`) and `~/.aws/config`
/// (`AWS_CONFIG_FILE`), merged per profile with the credentials file winning, as the AWS CLI does.
public struct SharedConfigFiles: Sendable {
    /// Settings per profile name, keys in lower case.
    public var profiles: [String: [String: String]]

    public init(profiles: [String: [String: String]]) { self.profiles = profiles }

    /// Reads both files; a missing file counts as empty.
    public static func load(environment: [String: String]) throws -> SharedConfigFiles {
        let home = environment["HOME"] ?? NSHomeDirectory()
        func expand(_ path: String) -> String { path.hasPrefix("~/") ? home + path.dropFirst(1) : path }
        let credentialsPath = expand(environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "~/.aws/credentials")
        let configPath = expand(environment["AWS_CONFIG_FILE"] ?? "~/.aws/config")

        var profiles: [String: [String: String]] = [:]
        if let text = try readIfPresent(configPath) {
            for (section, values) in parseINI(text) {
                // The config file spells profiles "[profile name]", except "[default]".
                let name: String
                if section == "default" {
                    name = "default"
                } else if section.hasPrefix("profile ") {
                    name = section.dropFirst("profile ".count).trimmingCharacters(in: .whitespaces)
                } else {
                    continue
                }
                profiles[name, default: [:]].merge(values) { _, new in new }
            }
        }
        if let text = try readIfPresent(credentialsPath) {
            for (section, values) in parseINI(text) {
                profiles[section, default: [:]].merge(values) { _, new in new }
            }
        }
        return SharedConfigFiles(profiles: profiles)
    }

    private static func readIfPresent(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ObjectStoreError(.configuration, operation: "load credentials", location: path,
                                   message: "the AWS shared config file cannot be read")
        }
    }

    /// `[section]` headers and `key = value` lines; `#` and `;` start comments; indented lines continue a nested
    /// block (like `s3 =` settings) and are skipped.
    public static func parseINI(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if rawLine.first == " " || rawLine.first == "\t" { continue }
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard let close = line.firstIndex(of: "]") else { current = nil; continue }
                let name = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
                continue
            }
            guard let section = current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            // Inline comments need whitespace before the marker, as in botocore.
            for marker in [" #", " ;", "\t#", "\t;"] {
                if let range = value.range(of: marker) { value = String(value[..<range.lowerBound]) }
            }
            sections[section]?[key] = value.trimmingCharacters(in: .whitespaces)
        }
        return sections
    }

    /// The region for a profile: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's `region`.
    public static func region(environment: [String: String]) -> String? {
        if let region = environment["AWS_REGION"], !region.isEmpty { return region }
        if let region = environment["AWS_DEFAULT_REGION"], !region.isEmpty { return region }
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        return (try? load(environment: environment))?.profiles[profile]?["region"]
    }
}

/// Credentials named by a profile in the shared files: static keys, or a role assumed with a web identity token.
public enum ProfileCredentials {
    /// The provider for `profile`, or nil when the profile does not exist or holds no credential settings.
    public static func provider(
        profile: String, environment: [String: String], httpClient: HTTPClient = ObjectStoreHTTPClient.shared
    ) throws -> (any CredentialProvider)? {
        let files = try SharedConfigFiles.load(environment: environment)
        guard let settings = files.profiles[profile] else { return nil }
        let location = "AWS profile \(profile)"

        if let accessKey = settings["aws_access_key_id"], !accessKey.isEmpty {
            guard let secret = settings["aws_secret_access_key"], !secret.isEmpty else {
                throw ObjectStoreError(.configuration, operation: "load credentials", location: location,
                                       message: "aws_access_key_id is set but aws_secret_access_key is not")
            }
            let token = settings["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
            return StaticCredentialProvider(
                AWSCredentials(accessKeyID: accessKey, secretAccessKey: secret, sessionToken: token))
        }
        if let roleARN = settings["role_arn"], let tokenFile = settings["web_identity_token_file"] {
            let source = WebIdentityCredentialSource(
                tokenFile: tokenFile, roleARN: roleARN, sessionName: settings["role_session_name"],
                environment: environment, transport: AsyncHTTPClientTransport(client: httpClient))
            return RefreshingCredentialProvider(source: source)
        }
        for unsupported in ["source_profile", "credential_source", "credential_process", "sso_session", "sso_start_url"]
        where settings[unsupported] != nil {
            throw ObjectStoreError(
                .configuration, operation: "load credentials", location: location,
                message: "the profile uses \(unsupported), which this program does not support; "
                    + "use access keys, web_identity_token_file, or the environment")
        }
        return nil
    }
}
