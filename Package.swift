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
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
        // OTLP export over HTTP only: the gRPC exporter would pull in grpc-swift for no gain here.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // Domain types and configuration. No I/O, no third-party dependencies.
        .target(name: "PipelineCore", swiftSettings: strictSettings),

        // AWS Signature Version 4: pure (no networking, date injected), tested against AWS's vectors.
        .target(name: "SigV4", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: strictSettings),

        // Buckets: one ObjectStore protocol; S3 (SigV4, multipart with resume, credential chain) and file://.
        .target(
            name: "ObjectStore",
            dependencies: [
                "PipelineCore", "SigV4",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // The catalog in PostgreSQL: connection, embedded cluster, migrations, queries.
        .target(
            name: "Catalog",
            dependencies: [
                "PipelineCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // libav through a system-library target; only the transcoder links it.
        .systemLibrary(
            name: "CLibAV",
            pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavfilter-dev", "libswscale-dev", "libswresample-dev", "libavutil-dev"])]
        ),
        .target(name: "Media", dependencies: ["CLibAV", "PipelineCore"], swiftSettings: strictSettings),

        // Reading sources: walking trees, classifying files, ISO images through libarchive, imaging discs.
        .systemLibrary(name: "CLibArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .target(
            name: "Ingest",
            dependencies: [
                "PipelineCore",
                "Catalog",
                "ObjectStore",
                "CLibArchive",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // Compression for bundles (zstd) and the catalog export (gzip, readable with any tool).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Formats and local I/O shared by the archiver and restore: bundle manifests, tar, zstd and gzip streams,
        // blocking file I/O on the thread pool. No libav, so the uploader (restore) can link it.
        .target(
            name: "ArchiveFormat",
            dependencies: [
                "PipelineCore", "ObjectStore", "CZstd", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // The cloud workers: the polling Service over the work queue, the transcode step (libav, so the uploader
        // never depends on this target), and the archive step (dedupe, bundles, catalog export, deletes, sweep).
        .target(
            name: "Workers",
            dependencies: [
                "PipelineCore", "Catalog", "ObjectStore", "Media", "ArchiveFormat", "CZstd", "CZlib",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),

        // Optional OTLP export of logs, metrics and traces (swift-otel) when OTEL_EXPORTER_OTLP_ENDPOINT is set.
        .target(
            name: "Telemetry",
            dependencies: [
                .product(name: "OTel", package: "swift-otel"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        // The way back: restore (requests, waiting, downloads, verified files), verify, rebuild-catalog, ls, sources.
        .target(
            name: "Restore",
            dependencies: [
                "PipelineCore", "Catalog", "ObjectStore", "ArchiveFormat", "Ingest",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // The status page, JSON API, metrics, health check and the alert watchdog (Hummingbird 2).
        .target(
            name: "StatusServer",
            dependencies: [
                "Catalog", "PipelineCore",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // What the five executables share: configuration from flags/env/file, logging, exit codes.
        .target(
            name: "CommandSupport",
            dependencies: [
                "PipelineCore",
                "Catalog",
                "Telemetry",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // Uploads one file with the ObjectStore, for bench/objectstore (side by side with aws s3 cp and rclone).
        .executableTarget(name: "objectstore-bench", dependencies: ["ObjectStore", "PipelineCore"], path: "bench/objectstore/objectstore-bench", swiftSettings: strictSettings),
        // Transcodes one file with the Media module, for bench/transcode (side by side with the ffmpeg CLI).
        .executableTarget(name: "transcode-bench", dependencies: ["Media"], path: "bench/transcode/transcode-bench", swiftSettings: strictSettings),
        // The status server against a large catalog, for bench/status.
        .executableTarget(
            name: "status-bench",
            dependencies: ["StatusServer", "Catalog", "PipelineCore", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log")],
            path: "bench/status/status-bench", swiftSettings: strictSettings),
        // Claim-and-complete throughput of the work queue, for bench/queue.
        .executableTarget(name: "queue-bench", dependencies: ["Catalog", "PipelineCore", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log")], path: "bench/queue/queue-bench", swiftSettings: strictSettings),
        .executableTarget(name: "uploader", dependencies: ["CommandSupport", "Catalog", "Ingest", "ObjectStore", "PipelineCore", "Restore", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "PostgresNIO", package: "postgres-nio")], swiftSettings: strictSettings),
        .executableTarget(name: "transcoder", dependencies: ["CommandSupport", "Catalog", "Media", "ObjectStore", "PipelineCore", "Workers", "StatusServer", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strictSettings),
        .executableTarget(name: "archiver", dependencies: ["CommandSupport", "Catalog", "ObjectStore", "PipelineCore", "Workers", "StatusServer", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strictSettings),
        .executableTarget(name: "status-server", dependencies: ["CommandSupport", "Catalog", "PipelineCore", "StatusServer", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strictSettings),
        .executableTarget(
            name: "pipeline",
            dependencies: [
                "CommandSupport", "Catalog", "Ingest", "Media", "ObjectStore", "PipelineCore", "StatusServer", "Workers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings),

        .testTarget(name: "SigV4Tests", dependencies: ["SigV4", "TestSupport", "Catalog"], resources: [.copy("Vectors")], swiftSettings: strictSettings),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "PipelineCore", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: strictSettings),
        .testTarget(
            name: "UploaderTests",
            dependencies: [
                "TestSupport", "Catalog", "ObjectStore", "PipelineCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ObjectStoreTests",
            dependencies: [
                "ObjectStore", "PipelineCore", "SigV4", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WorkersTests",
            dependencies: [
                "TestSupport", "Workers", "ArchiveFormat", "Catalog", "ObjectStore", "PipelineCore", "Media",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "StatusServerTests",
            dependencies: [
                "StatusServer", "Catalog", "PipelineCore", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PipelineTests",
            dependencies: [
                "TestSupport", "Catalog", "ObjectStore", "PipelineCore", "Workers",
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RestoreTests",
            dependencies: [
                "TestSupport", "Restore", "ArchiveFormat", "Catalog", "ObjectStore", "PipelineCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "PipelineCoreTests", dependencies: ["PipelineCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "CatalogTests",
            dependencies: ["Catalog", "PipelineCore", "TestSupport", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "MediaTests", dependencies: ["Media"], swiftSettings: strictSettings),
        .testTarget(name: "CommandTests", dependencies: ["TestSupport", "Catalog", "PipelineCore"], swiftSettings: strictSettings),
        // Helpers shared by test targets: the servers scripts/test started, running the built executables.
        .target(
            name: "TestSupport",
            dependencies: [
                "Catalog", "PipelineCore", "ObjectStore",
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),
    ]
)
