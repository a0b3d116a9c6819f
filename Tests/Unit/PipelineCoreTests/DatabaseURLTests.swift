import PipelineCore
import Testing

@Suite("DATABASE_URL parsing")
struct DatabaseURLTests {
    @Test("a full URL with an escaped password")
    func fullURL() throws {
        let url = try DatabaseURL(parsing: "postgresql://app:p%40ss%2Fw0rd@db.example.com:6543/catalog?sslmode=verify-full&sslrootcert=/etc/rds.pem")
        #expect(url.endpoint == .tcp(host: "db.example.com", port: 6543))
        #expect(url.user == "app")
        #expect(url.password?.revealed == "p@ss/w0rd")
        #expect(url.database == "catalog")
        #expect(url.sslMode == .verifyFull)
        #expect(url.sslRootCertificatePath == "/etc/rds.pem")
        #expect(url.description == "postgres://app:***@db.example.com:6543/catalog?sslmode=verify-full")
    }

    @Test("defaults: port 5432, sslmode prefer; IPv6 hosts in brackets")
    func defaults() throws {
        let url = try DatabaseURL(parsing: "postgres://me@[::1]/db")
        #expect(url.endpoint == .tcp(host: "::1", port: 5432))
        #expect(url.password == nil)
        #expect(url.sslMode == .prefer)
    }

    @Test("libpq's unix-socket form")
    func unixSocket() throws {
        let url = try DatabaseURL(parsing: "postgres://backup@/catalog?host=/var/run/postgresql&port=5433")
        #expect(url.endpoint == .unixSocket(directory: "/var/run/postgresql", port: 5433))
        #expect(url.unixSocketPath == "/var/run/postgresql/.s.PGSQL.5433")
    }

    @Test("malformed URLs name the problem and never echo the input", arguments: [
        ("mysql://u:topsecret@h/d", "postgres://"),
        ("postgres://u:topsecret@h:0/d", "port"),
        ("postgres://u:topsecret@h:x/d", "port"),
        ("postgres://u:topsecret@h/", "database name"),
        ("postgres://:topsecret@h/d", "user name"),
        ("postgres://u:topsecret@/d", "host"),
        ("postgres://u:topsecret@h/d?sslmode=maybe", "sslmode"),
        ("postgres://u:topsecret@h/d?sslmod=require", "unknown parameter 'sslmod'"),
        ("postgres://u:top%zzsecret@h/d", "password"),
    ])
    func malformed(input: String, expected: String) {
        let error = #expect(throws: DatabaseURL.ParseError.self) { try DatabaseURL(parsing: input) }
        #expect(error?.reason.contains(expected) == true, "\(error?.reason ?? "")")
        #expect(error?.reason.contains("topsecret") == false)
    }
}

@Suite("Bucket URL parsing")
struct StorageURLTests {
    @Test("s3 URLs normalise the prefix to end in one slash")
    func s3() throws {
        #expect(try StorageURL(parsing: "s3://my-bucket") == .s3(bucket: "my-bucket", prefix: ""))
        #expect(try StorageURL(parsing: "s3://my-bucket/") == .s3(bucket: "my-bucket", prefix: ""))
        #expect(try StorageURL(parsing: "s3://my-bucket/raw/discs") == .s3(bucket: "my-bucket", prefix: "raw/discs/"))
        #expect(try StorageURL(parsing: "s3://my.bucket-2//raw//") == .s3(bucket: "my.bucket-2", prefix: "raw/"))
    }

    @Test("file URLs are absolute, percent-decoded, without a trailing slash")
    func file() throws {
        #expect(try StorageURL(parsing: "file:///srv/backup/staging/") == .file(path: "/srv/backup/staging"))
        #expect(try StorageURL(parsing: "file:///My%20Disc") == .file(path: "/My Disc"))
        #expect(try StorageURL(parsing: "file:///") == .file(path: "/"))
    }

    @Test("bad URLs are refused", arguments: ["s3://", "s3://ab", "s3://UPPER", "s3://-dash", "s3://a..b", "file://relative", "file:///a/../b", "http://x", "/plain/path"])
    func refused(input: String) {
        #expect(throws: StorageURL.ParseError.self) { try StorageURL(parsing: input) }
    }
}
