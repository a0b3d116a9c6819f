// swift-tools-version:6.1
import PackageDescription

// Every target is built in Swift 6 language mode (complete concurrency checking) with these upcoming features.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "personal-backup",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "uploader", targets: ["uploader"]),
        .executable(name: "transcoder", targets: ["transcoder"]),
        .executable(name: "archiver", targets: ["archiver"]),
        .executable(name: "status-server", targets: ["status-server"]),
        .executable(name: "pipeline", targets: ["pipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        // bcrypt for the family accounts' passwords (HummingbirdBcrypt: OpenBSD's bcrypt; no Hummingbird linked with it).
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
        // OTLP export over HTTP only: the gRPC exporter would pull in grpc-swift for no gain here.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // ── Core: pure logic, no I/O ─────────────────────────────────────────────────────────────────────────────

        // Domain types, configuration parsing, formats for people. No I/O, no third-party dependencies.
        .target(name: "PipelineCore", path: "Sources/Core/PipelineCore", swiftSettings: strictSettings),
        // AWS Signature Version 4: pure (no networking, date injected), tested against AWS's vectors.
        .target(name: "SigV4", dependencies: [crypto], path: "Sources/Core/SigV4", swiftSettings: strictSettings),
        // The age file format (age-encryption.org/v1): X25519 and passphrase recipients, streaming STREAM payload.
        // Pure: swift-crypto's primitives, no I/O.
        .target(
            name: "AgeEncryption", dependencies: ["PipelineCore", crypto, .product(name: "_CryptoExtras", package: "swift-crypto")],
            path: "Sources/Core/AgeEncryption", swiftSettings: strictSettings),

        // ── Adapters: each talks to one outside thing (the OS, a bucket, PostgreSQL, libav, a disc) ───────────────

        // The one home for blocking work and small concurrency helpers: the thread pool, POSIX file calls, the
        // buffered file writer, a Mutex box, the helper-program runner.
        .target(name: "SystemIO", dependencies: ["PipelineCore", "CXattr", crypto, nioCore, nioPosix], path: "Sources/Adapters/SystemIO", swiftSettings: strictSettings),
        // Extended attributes (<sys/xattr.h>, which the Glibc module leaves out), for SystemIO.
        .systemLibrary(name: "CXattr", path: "Sources/Adapters/CXattr"),
        // Buckets: one ObjectStore protocol; S3 (SigV4, multipart with resume, credential chain) and file://.
        .target(
            name: "ObjectStore",
            dependencies: [
                "PipelineCore", "SigV4", "SystemIO", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                nioCore, nioPosix, .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOFoundationCompat", package: "swift-nio"),
                crypto, logging,
            ],
            path: "Sources/Adapters/ObjectStore", swiftSettings: strictSettings),
        // The catalog in PostgreSQL: connection, embedded cluster, migrations, and every SQL statement of the project.
        .target(
            name: "Catalog",
            dependencies: ["PipelineCore", "SystemIO", postgres, nioCore, .product(name: "NIOSSL", package: "swift-nio-ssl"), logging],
            path: "Sources/Adapters/Catalog", swiftSettings: strictSettings),
        // libav through a system-library target; only the transcoder links it.
        .systemLibrary(
            name: "CLibAV", path: "Sources/Adapters/CLibAV", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavfilter-dev", "libswscale-dev", "libswresample-dev", "libavutil-dev"])]),
        .target(name: "Media", dependencies: ["CLibAV"], path: "Sources/Adapters/Media", swiftSettings: strictSettings),
        // Reading sources: walking trees, classifying files, ISO and UDF images, imaging discs, raw paths, excludes.
        .target(
            name: "SourceReading", dependencies: ["PipelineCore", "SystemIO", crypto, nioCore],
            path: "Sources/Adapters/SourceReading", swiftSettings: strictSettings),
        // Compression for bundles (zstd) and the catalog export (gzip, readable with any tool).
        .systemLibrary(name: "CZstd", path: "Sources/Adapters/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/Adapters/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // What the archiver writes and restore reads: bundle manifests, tar, zstd and gzip streams. No libav, no
        // buckets: the uploader (restore) links it too.
        .target(
            name: "ArchiveFormat", dependencies: ["PipelineCore", "SystemIO", "AgeEncryption", "CZstd", "CZlib", crypto],
            path: "Sources/Adapters/ArchiveFormat", swiftSettings: strictSettings),
        // Optional OTLP export of logs, metrics and traces (swift-otel) when OTEL_EXPORTER_OTLP_ENDPOINT is set.
        .target(
            name: "Telemetry",
            dependencies: [
                .product(name: "OTel", package: "swift-otel"), logging, metrics,
                .product(name: "Instrumentation", package: "swift-distributed-tracing"), lifecycle,
            ],
            path: "Sources/Adapters/Telemetry", swiftSettings: strictSettings),

        // ── Steps: the pipeline's work, built from the adapters ───────────────────────────────────────────────────

        // The generic work-queue runtime: the polling Service, job handlers, leases, backoff. Knows nothing of
        // archives or video.
        .target(
            name: "JobQueue", dependencies: ["PipelineCore", "Catalog", lifecycle, postgres, logging, tracing],
            path: "Sources/Steps/JobQueue", swiftSettings: strictSettings),
        // The archive step: dedupe, bundles, catalog export, deletes, sweeps. No libav.
        .target(
            name: "ArchiveStep",
            dependencies: ["PipelineCore", "SystemIO", "Catalog", "ObjectStore", "ArchiveFormat", "JobQueue", postgres, logging, crypto, nioCore],
            path: "Sources/Steps/ArchiveStep", swiftSettings: strictSettings),
        // The transcode step: raw video to the archive format with libav, verified against the raw.
        .target(
            name: "TranscodeStep",
            dependencies: ["PipelineCore", "SystemIO", "Catalog", "ObjectStore", "ArchiveFormat", "Media", "JobQueue", logging, crypto, nioCore],
            path: "Sources/Steps/TranscodeStep", swiftSettings: strictSettings),
        // The upload run: sources into the staging bucket and the catalog, resumable.
        .target(
            name: "Upload",
            dependencies: ["PipelineCore", "SystemIO", "SourceReading", "Catalog", "ObjectStore", "ArchiveFormat", "AgeEncryption", logging, crypto, nioCore, lifecycle],
            path: "Sources/Steps/Upload", swiftSettings: strictSettings),
        // The way back: restore (requests, waiting, downloads, verified files), verify, audit, rebuild-catalog, ls, sources.
        .target(
            name: "Restore",
            dependencies: ["PipelineCore", "SystemIO", "SourceReading", "Catalog", "ObjectStore", "ArchiveFormat", "AgeEncryption", logging, crypto, nioCore],
            path: "Sources/Steps/Restore", swiftSettings: strictSettings),
        // The scheduled maintenance tasks (verify-sample, export-catalog, refresh-restore-status, audit), run by the
        // archivers between batches under a lease; the same code as the commands, from Restore and ArchiveStep.
        .target(
            name: "Maintenance",
            dependencies: ["PipelineCore", "SystemIO", "Catalog", "ObjectStore", "JobQueue", "ArchiveStep", "Restore", lifecycle, postgres, logging],
            path: "Sources/Steps/Maintenance", swiftSettings: strictSettings),
        // Alerts: the watchdog, the alert store, delivery and webhook payloads. Used by the workers (a crash alert on
        // the way out) and the status server (the watchdog), without Hummingbird.
        .target(
            name: "Alerts",
            dependencies: [
                "PipelineCore", "SystemIO", "Catalog", .product(name: "AsyncHTTPClient", package: "async-http-client"), lifecycle, postgres,
                nioCore, .product(name: "NIOHTTP1", package: "swift-nio"), logging,
            ],
            path: "Sources/Steps/Alerts", swiftSettings: strictSettings),
        // Family accounts: users, bcrypt passwords, server-side sessions, personal API tokens, the login rate limit.
        // Used by the status server (login, the family API) and the uploader (`uploader users`), without Hummingbird.
        .target(
            name: "Accounts", dependencies: ["PipelineCore", "SystemIO", "Catalog", bcrypt, crypto, postgres, logging],
            path: "Sources/Steps/Accounts", swiftSettings: strictSettings),
        // The status page, JSON API, metrics and health check, the family routes and browser uploads over tus
        // (Hummingbird 2); a finished browser upload is stored by the Upload step, as `uploader upload` stores a file.
        .target(
            name: "StatusServer",
            dependencies: [
                "PipelineCore", "SystemIO", "Catalog", "Alerts", "Accounts", "ObjectStore", "Upload", "ArchiveFormat", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"), lifecycle, crypto, postgres, nioCore, logging,
            ],
            path: "Sources/Steps/StatusServer", swiftSettings: strictSettings),

        // ── Programs: the five executables and what they share ───────────────────────────────────────────────────

        // Configuration from flags/env/file, logging, exit codes, the service runner, opening the stores.
        .target(
            name: "CommandSupport",
            dependencies: [
                "PipelineCore", "Catalog", "ObjectStore", "JobQueue", "SystemIO", "Telemetry", lifecycle, .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                argumentParser, logging, postgres,
            ],
            path: "Sources/Programs/CommandSupport", swiftSettings: strictSettings),
        // The upload commands' shared flags (encryption: recipients, passphrases, identities; the spool and its
        // sender service), for the uploader and `pipeline run`; apart from CommandSupport so that the workers do not
        // link the upload step.
        .target(
            name: "UploadCommandSupport",
            dependencies: ["CommandSupport", "Catalog", "ObjectStore", "PipelineCore", "SystemIO", "Upload", "ArchiveFormat", "AgeEncryption", argumentParser, postgres, lifecycle],
            path: "Sources/Programs/UploadCommandSupport", swiftSettings: strictSettings),
        .executableTarget(
            name: "uploader",
            dependencies: [
                "CommandSupport", "UploadCommandSupport", "PipelineCore", "SystemIO", "Catalog", "ObjectStore", "SourceReading", "Upload", "Restore",
                "ArchiveFormat", "AgeEncryption", "Accounts", argumentParser, postgres, lifecycle,
            ],
            path: "Sources/Programs/uploader", swiftSettings: strictSettings),
        .executableTarget(
            name: "transcoder",
            dependencies: ["CommandSupport", "PipelineCore", "Catalog", "ObjectStore", "Media", "JobQueue", "TranscodeStep", "Alerts", argumentParser],
            path: "Sources/Programs/transcoder", swiftSettings: strictSettings),
        .executableTarget(
            name: "archiver",
            dependencies: ["CommandSupport", "PipelineCore", "Catalog", "ObjectStore", "JobQueue", "ArchiveStep", "Maintenance", "Alerts", argumentParser],
            path: "Sources/Programs/archiver", swiftSettings: strictSettings),
        .executableTarget(
            name: "status-server", dependencies: ["CommandSupport", "PipelineCore", "Catalog", "StatusServer", "SystemIO", argumentParser],
            path: "Sources/Programs/status-server", swiftSettings: strictSettings),
        .executableTarget(
            name: "pipeline",
            dependencies: [
                "CommandSupport", "UploadCommandSupport", "PipelineCore", "SystemIO", "Catalog", "ObjectStore", "SourceReading", "Upload", "Media",
                "JobQueue", "ArchiveStep", "Maintenance", "ArchiveFormat", "TranscodeStep", "StatusServer", argumentParser, .product(name: "Hummingbird", package: "hummingbird"), nioCore, postgres,
                lifecycle, .product(name: "UnixSignals", package: "swift-service-lifecycle"), logging,
            ],
            path: "Sources/Programs/pipeline", swiftSettings: strictSettings),

        // ── Benchmarks (bench/): each runs one part side by side with its anchor tool ─────────────────────────────

        // Uploads one file with the ObjectStore, for bench/objectstore (side by side with aws s3 cp and rclone).
        .executableTarget(name: "objectstore-bench", dependencies: ["ObjectStore", "PipelineCore"], path: "bench/objectstore/objectstore-bench", swiftSettings: strictSettings),
        // Transcodes one file with the Media module, for bench/transcode (side by side with the ffmpeg CLI).
        .executableTarget(name: "transcode-bench", dependencies: ["Media"], path: "bench/transcode/transcode-bench", swiftSettings: strictSettings),
        // The status server against a large catalog, for bench/status.
        .executableTarget(
            name: "status-bench", dependencies: ["StatusServer", "Alerts", "Catalog", "PipelineCore", .product(name: "Hummingbird", package: "hummingbird"), logging],
            path: "bench/status/status-bench", swiftSettings: strictSettings),
        // Claim-and-complete throughput of the work queue, for bench/queue.
        .executableTarget(name: "queue-bench", dependencies: ["Catalog", "PipelineCore", postgres, logging], path: "bench/queue/queue-bench", swiftSettings: strictSettings),

        // ── Tests: Unit/ runs in seconds with no server and no process (scripts/test --unit); Integration/ runs
        // against the real PostgreSQL and moto that scripts/test starts, real ffmpeg and the built programs ─────────

        .testTarget(name: "PipelineCoreTests", dependencies: ["PipelineCore"], path: "Tests/Unit/PipelineCoreTests", swiftSettings: strictSettings),
        .testTarget(name: "SigV4Tests", dependencies: ["SigV4"], path: "Tests/Unit/SigV4Tests", resources: [.copy("Vectors")], swiftSettings: strictSettings),
        .testTarget(
            name: "AgeEncryptionTests", dependencies: ["AgeEncryption", "PipelineCore", "CZlib", crypto], path: "Tests/Unit/AgeEncryptionTests",
            resources: [.copy("Vectors")], swiftSettings: strictSettings),
        .testTarget(
            name: "UnitTests",
            dependencies: [
                "PipelineCore", "SystemIO", "Catalog", "ObjectStore", "SourceReading", "ArchiveFormat", "Media", "JobQueue", "ArchiveStep", "TranscodeStep", "CommandSupport", "AgeEncryption", "Upload", crypto,
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/Unit/UnitTests", swiftSettings: strictSettings),

        // Our age encryption against Debian's age and age-keygen, and the uploader's keygen/encrypt/decrypt commands.
        .testTarget(
            name: "AgeInteropTests", dependencies: ["AgeEncryption", "TestSupport", "SystemIO", "PipelineCore"],
            path: "Tests/Integration/AgeInteropTests", swiftSettings: strictSettings),
        .testTarget(
            name: "CatalogTests", dependencies: ["Catalog", "SystemIO", "PipelineCore", "TestSupport", postgres, logging],
            path: "Tests/Integration/CatalogTests", swiftSettings: strictSettings),
        .testTarget(
            name: "CommandTests", dependencies: ["TestSupport", "SystemIO", "Catalog"],
            path: "Tests/Integration/CommandTests", swiftSettings: strictSettings),
        .testTarget(name: "MediaTests", dependencies: ["Media", "TestSupport"], path: "Tests/Integration/MediaTests", swiftSettings: strictSettings),
        .testTarget(
            name: "ObjectStoreTests",
            dependencies: [
                "ObjectStore", "PipelineCore", "SigV4", "SystemIO", "TestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                logging, nioCore, nioPosix, .product(name: "NIOHTTP1", package: "swift-nio"), crypto,
            ],
            path: "Tests/Integration/ObjectStoreTests", swiftSettings: strictSettings),
        .testTarget(
            name: "PipelineTests",
            dependencies: [
                "TestSupport", "SystemIO", "Catalog", "ObjectStore", "PipelineCore", "ArchiveStep", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                nioCore, .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/Integration/PipelineTests", swiftSettings: strictSettings),
        .testTarget(
            name: "RestoreTests", dependencies: ["TestSupport", "SystemIO", "Restore", "ArchiveFormat", "Catalog", "ObjectStore", "PipelineCore", crypto],
            path: "Tests/Integration/RestoreTests", swiftSettings: strictSettings),
        .testTarget(
            name: "SourceReadingTests", dependencies: ["SourceReading", "SystemIO", "PipelineCore", "TestSupport", nioCore],
            path: "Tests/Integration/SourceReadingTests", swiftSettings: strictSettings),
        .testTarget(
            name: "StatusServerTests",
            dependencies: [
                "StatusServer", "Alerts", "Accounts", "ObjectStore", "SystemIO", "Catalog", "PipelineCore", "TestSupport", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"), .product(name: "HTTPTypes", package: "swift-http-types"), lifecycle, .product(name: "AsyncHTTPClient", package: "async-http-client"), postgres, nioCore,
                .product(name: "NIOHTTP1", package: "swift-nio"), logging,
            ],
            path: "Tests/Integration/StatusServerTests", swiftSettings: strictSettings),
        .testTarget(
            name: "UploaderTests", dependencies: ["TestSupport", "SystemIO", "Catalog", "ObjectStore", "PipelineCore", postgres, crypto],
            path: "Tests/Integration/UploaderTests", swiftSettings: strictSettings),
        .testTarget(
            name: "WorkersTests",
            dependencies: [
                "TestSupport", "SystemIO", "JobQueue", "ArchiveStep", "Maintenance", "TranscodeStep", "ArchiveFormat", "Catalog", "ObjectStore", "PipelineCore", "Media", "SigV4",
                postgres, logging, lifecycle, crypto, .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            path: "Tests/Integration/WorkersTests", swiftSettings: strictSettings),
        // The cloud image (docker/Dockerfile, built by docker/build) run with podman against the servers scripts/test started.
        .testTarget(
            name: "ContainerTests",
            dependencies: ["TestSupport", "SystemIO", "Catalog", postgres, .product(name: "AsyncHTTPClient", package: "async-http-client")],
            path: "Tests/Integration/ContainerTests", swiftSettings: strictSettings),
        // Helpers shared by test targets: the servers scripts/test started, running the built executables.
        .target(
            name: "TestSupport",
            dependencies: ["Catalog", "PipelineCore", "ObjectStore", "SystemIO", postgres, logging, crypto, .product(name: "Hummingbird", package: "hummingbird"), lifecycle],
            path: "Tests/TestSupport", swiftSettings: strictSettings),
    ]
)

// Products used by several targets, named once.
var crypto: Target.Dependency { .product(name: "Crypto", package: "swift-crypto") }
var nioCore: Target.Dependency { .product(name: "NIOCore", package: "swift-nio") }
var nioPosix: Target.Dependency { .product(name: "NIOPosix", package: "swift-nio") }
var logging: Target.Dependency { .product(name: "Logging", package: "swift-log") }
var metrics: Target.Dependency { .product(name: "Metrics", package: "swift-metrics") }
var tracing: Target.Dependency { .product(name: "Tracing", package: "swift-distributed-tracing") }
var postgres: Target.Dependency { .product(name: "PostgresNIO", package: "postgres-nio") }
var lifecycle: Target.Dependency { .product(name: "ServiceLifecycle", package: "swift-service-lifecycle") }
var bcrypt: Target.Dependency { .product(name: "HummingbirdBcrypt", package: "hummingbird-auth") }
var argumentParser: Target.Dependency { .product(name: "ArgumentParser", package: "swift-argument-parser") }
