import TestSupport

/// The uploader's tests use the shared harness: a database, buckets and a source directory per test.
typealias UploaderHarness = PipelineHarness
