import Catalog
import Crypto
import Foundation
import Testing
import TestSupport
import SystemIO

/// `uploader users …` and `upload --owner`, the real program against real PostgreSQL, passwords on standard input.
@Suite("uploader users and upload --owner")
struct UsersCommandTests {
    static let password = "correct horse battery"

    @Test("users add reads the password from stdin, refuses short ones, stores only bcrypt; token prints once and stores only its hash; revoke")
    func usersCommands() async throws {
        try await UploaderHarness.with(.file) { harness in
            let env = harness.environment
            for (bad, line) in [("", "the password is empty"), ("short", "too short"), (String(repeating: "x", count: 73), "too long")] {
                let refused = try await Program.run("uploader", ["users", "add", "alice", "--admin"], standardInput: bad, environment: env)
                #expect(refused.status == 2, "\(refused.output)")
                #expect(refused.output.contains(line), "\(refused.output)")
                #expect(refused.output.split(separator: "\n").count == 1, "one line: \(refused.output)")
            }
            let badName = try await Program.run("uploader", ["users", "add", "../alice"], standardInput: Self.password, environment: env)
            #expect(badName.status == 2 && badName.output.contains("user name"), "\(badName.output)")

            let added = try await Program.run("uploader", ["users", "add", "alice", "--admin"], standardInput: Self.password, environment: env)
            #expect(added.status == 0 && added.output.contains("added admin alice"), "\(added.output)")
            #expect(!added.output.contains(Self.password))
            let again = try await Program.run("uploader", ["users", "add", "alice"], standardInput: Self.password, environment: env)
            #expect(again.status == 1 && again.output.contains("exists already"), "\(again.output)")
            #expect(try await Program.run("uploader", ["users", "add", "bob"], standardInput: Self.password + " bob", environment: env).status == 0)
            let hash = try #require(try await harness.scalar("SELECT password_hash FROM users WHERE name = 'alice'", as: String.self))
            #expect(hash.hasPrefix("$2") && !hash.contains(Self.password))

            let list = try await Program.run("uploader", ["users", "list", "--json"], environment: env)
            #expect(list.status == 0, "\(list.output)")
            let lines = list.output.split(separator: "\n").filter { $0.hasPrefix("{") }
            #expect(lines.count == 2 && lines[0].contains(#""name":"alice""#) && lines[0].contains(#""role":"admin""#) && lines[1].contains(#""role":"member""#))

            let token = try await Program.run("uploader", ["users", "token", "bob", "--name", "laptop"], environment: env)
            #expect(token.status == 0, "\(token.output)")
            let secret = token.output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(secret.hasPrefix("pbk_") && secret.count > 40)
            let digest = Array(SHA256.hash(data: Data(secret.utf8))).map { String(format: "%02x", $0) }.joined()
            #expect(try await harness.scalar("SELECT count(*) FROM api_tokens WHERE token_hash = '\(digest)' AND revoked_at IS NULL", as: Int64.self) == 1)
            #expect(try await harness.scalar("SELECT count(*) FROM api_tokens WHERE token_hash = '\(secret)' OR name = '\(secret)'", as: Int64.self) == 0)
            let twice = try await Program.run("uploader", ["users", "token", "bob", "--name", "laptop"], environment: env)
            #expect(twice.status == 1 && twice.output.contains("already has a token named laptop"), "\(twice.output)")
            let nobody = try await Program.run("uploader", ["users", "token", "mallory"], environment: env)
            #expect(nobody.status == 1 && nobody.output.contains("no user named mallory"), "\(nobody.output)")

            let revoked = try await Program.run("uploader", ["users", "revoke-token", "bob", "--name", "laptop"], environment: env)
            #expect(revoked.status == 0 && revoked.output.contains("revoked 1 token of bob"), "\(revoked.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL", as: Int64.self) == 0)
            let unknownToken = try await Program.run("uploader", ["users", "revoke-token", "bob", "--name", "laptop"], environment: env)
            #expect(unknownToken.status == 1 && unknownToken.output.contains("no live token named laptop"), "\(unknownToken.output)")

            // disable / enable, and an invitation link printed once (only its hash stored).
            #expect(try await Program.run("uploader", ["users", "disable", "bob"], environment: env).output.contains("disabled bob"))
            #expect(try await harness.scalar("SELECT disabled_at IS NOT NULL FROM users WHERE name = 'bob'", as: Bool.self) == true)
            #expect(try await Program.run("uploader", ["users", "token", "bob", "--name", "again"], environment: env).status == 1, "a disabled user gets no token")
            #expect(try await Program.run("uploader", ["users", "enable", "bob"], environment: env).output.contains("enabled bob"))
            #expect(try await harness.scalar("SELECT disabled_at IS NULL FROM users WHERE name = 'bob'", as: Bool.self) == true)
            let nobodyDisabled = try await Program.run("uploader", ["users", "disable", "mallory"], environment: env)
            #expect(nobodyDisabled.status == 1 && nobodyDisabled.output.contains("no user named mallory"))
            let invite = try await Program.run("uploader", ["users", "invite", "--admin", "--days", "2"], environment: env)
            #expect(invite.status == 0 && invite.output.contains("a one-time admin invitation"), "\(invite.output)")
            let link = try #require(invite.output.split(separator: "\n").first { $0.hasPrefix("/invite/inv_") })
            let inviteDigest = Array(SHA256.hash(data: Data(link.dropFirst("/invite/".count).utf8))).map { String(format: "%02x", $0) }.joined()
            #expect(try await harness.scalar("SELECT role FROM invitations WHERE token_hash = '\(inviteDigest)'", as: String.self) == "admin")
            #expect(try await Program.run("uploader", ["users", "invite", "--days", "31"], environment: env).status != 0)
        }
    }

    @Test("upload --owner: an unknown user stops before anything is read; the only user is the default; an owned source keeps its owner")
    func uploadOwner() async throws {
        try await UploaderHarness.with(.file) { harness in
            let env = harness.environment
            try harness.write("docs/a.txt", "first")
            let unknown = try await Program.run("uploader", ["upload", harness.source.path, "--label", "DVD 1", "--owner", "mallory", "--json"], environment: env)
            #expect(unknown.status == 2, "\(unknown.output)")
            #expect(unknown.output.contains("--owner mallory: no such user"), "\(unknown.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM sources", as: Int64.self) == 0, "nothing recorded")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles", as: Int64.self) == 0, "nothing read")

            // No user at all: the source has no owner.
            #expect(try await Program.run("uploader", ["upload", harness.source.path, "--label", "Old", "--json"], environment: env).status == 0)
            #expect(try await harness.scalar("SELECT owner_id IS NULL FROM sources WHERE label = 'Old'", as: Bool.self) == true)

            #expect(try await Program.run("uploader", ["users", "add", "alice"], standardInput: Self.password, environment: env).status == 0)
            let only = try await Program.run("uploader", ["upload", harness.source.path, "--label", "DVD 1", "--json"], environment: env)
            #expect(only.status == 0, "\(only.output)")
            #expect(try await harness.scalar("SELECT u.name FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label = 'DVD 1'", as: String.self) == "alice")

            #expect(try await Program.run("uploader", ["users", "add", "bob"], standardInput: Self.password, environment: env).status == 0)
            let taken = try await Program.run("uploader", ["upload", harness.source.path, "--label", "DVD 1", "--owner", "bob", "--json"], environment: env)
            #expect(taken.status == 2 && taken.output.contains("DVD 1 belongs to alice"), "\(taken.output)")
            // Two users, no --owner: BACKUP_OWNER decides; unknown there is an error too.
            var configured = env
            configured["BACKUP_OWNER"] = "bob"
            #expect(try await Program.run("uploader", ["upload", harness.source.path, "--label", "DVD 2", "--json"], environment: configured).status == 0)
            #expect(try await harness.scalar("SELECT u.name FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label = 'DVD 2'", as: String.self) == "bob")
            configured["BACKUP_OWNER"] = "carol"
            let badDefault = try await Program.run("uploader", ["upload", harness.source.path, "--label", "DVD 3", "--json"], environment: configured)
            #expect(badDefault.status == 2 && badDefault.output.contains("BACKUP_OWNER=carol: no such user"), "\(badDefault.output)")
            // An ownerless source from before is claimed by an explicit owner.
            #expect(try await Program.run("uploader", ["upload", harness.source.path, "--label", "Old", "--owner", "bob", "--json"], environment: env).status == 0)
            #expect(try await harness.scalar("SELECT u.name FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label = 'Old'", as: String.self) == "bob")
        }
    }

    @Test("--owner on image and discs: the image and every disc's source get the owner; an explicit owner for a disc or image someone else owns is refused before anything is read, that source untouched")
    func imageAndDiscsOwner() async throws {
        try await UploaderHarness.with(.file) { harness in
            let env = harness.environment
            for name in ["alice", "bob"] {
                #expect(try await Program.run("uploader", ["users", "add", name], standardInput: Self.password, environment: env).status == 0)
            }
            let iso = harness.work.path + "/photos.iso"
            try await DiscLoopTests.makeDisc(iso, volume: "PHOTOS", files: ["a.jpg": UploaderHarness.bytes(count: 5_000, seed: 1)], in: harness)
            let image = try await Program.run("uploader", ["image", iso, "--label", "Photos image", "--owner", "bob"], environment: env)
            #expect(image.status == 0, "\(image.output)")
            #expect(try await harness.scalar("SELECT u.name FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label = 'Photos image'", as: String.self) == "bob")
            let finished = try await harness.scalar("SELECT finished_at::text FROM sources WHERE label = 'Photos image'", as: String.self)
            let taken = try await Program.run("uploader", ["image", iso, "--label", "Photos image", "--owner", "alice"], environment: env)
            #expect(taken.status == 2 && taken.output.contains("Photos image belongs to bob; --owner alice cannot take it"), "\(taken.output)")
            #expect(try await harness.scalar("SELECT finished_at::text FROM sources WHERE label = 'Photos image'", as: String.self) == finished, "untouched")

            // Two discs read by the loop for alice.
            let queue = harness.work.path + "/queue"
            try FileManager.default.createDirectory(atPath: queue, withIntermediateDirectories: true)
            let drive = harness.work.path + "/drive.iso"
            try await DiscLoopTests.makeDisc(drive, volume: "SUMMER", files: ["beach.jpg": UploaderHarness.bytes(count: 7_000, seed: 2)], in: harness)
            try FileManager.default.copyItem(atPath: drive, toPath: harness.work.path + "/summer-again.iso")
            try await DiscLoopTests.makeDisc(queue + "/2.iso", volume: "WINTER", files: ["snow.jpg": UploaderHarness.bytes(count: 9_000, seed: 3)], in: harness)
            let log = harness.work.path + "/eject.log"
            let read = try await DiscLoopTests.discs(
                [drive, "--count", "2", "--json", "--poll-seconds", "0.2", "--eject-command", try DiscLoopTests.ejectScript(queue: queue, log: log, in: harness),
                 "--owner", "alice"], harness)
            #expect(read.status == 0, "\(read.output)")
            let owners = try await harness.scalar("""
                SELECT string_agg(s.label || '=' || u.name, ',' ORDER BY s.label) FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label LIKE '%#%'
                """, as: String.self)
            #expect(owners == "SUMMER #1=alice,WINTER #1=alice")

            // The summer disc again, for bob: seen before, it is alice's; refused, nothing read, her source untouched.
            try FileManager.default.moveItem(atPath: harness.work.path + "/summer-again.iso", toPath: drive)
            let files = try await harness.scalar("SELECT count(*) FROM objectstoragefiles", as: Int64.self)
            let finishedSummer = try await harness.scalar("SELECT finished_at::text FROM sources WHERE label = 'SUMMER #1'", as: String.self)
            let refused = try await DiscLoopTests.discs(
                [drive, "--count", "1", "--json", "--poll-seconds", "0.2", "--eject-command", "echo >> '\(log)'", "--owner", "bob"], harness)
            #expect(refused.status == 1, "\(refused.output)")
            let done = DiscLoopTests.events(refused.output, "disc_done")
            #expect(done.first?["status"] as? String == "refused", "\(refused.output)")
            #expect((done.first?["detail"] as? String)?.contains("SUMMER #1 belongs to alice; --owner bob cannot take it") == true, "\(refused.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles", as: Int64.self) == files, "nothing read")
            #expect(try await harness.scalar("SELECT finished_at::text FROM sources WHERE label = 'SUMMER #1'", as: String.self) == finishedSummer)
            #expect(try await harness.scalar("SELECT u.name FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label = 'SUMMER #1'", as: String.self) == "alice")
        }
    }
}
