import PipelineCore
import Testing

@Suite("Log redaction")
struct LogRedactionTests {
    let redaction = LogRedaction(knownSecrets: ["wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "short"])

    @Test("configured secrets by value (also percent-encoded), URL passwords, signed-URL and token parameters, bearer and project tokens")
    func shapes() {
        #expect(redaction.redact("key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY end") == "key <redacted> end")
        #expect(redaction.redact("key wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY") == "key <redacted>")
        #expect(redaction.redact("a short word stays") == "a short word stays", "secrets under 8 characters are not matched by value")
        #expect(redaction.redact("postgres://backup:pa55word@db:5432/x?sslmode=require") == "postgres://backup:<redacted>@db:5432/x?sslmode=require")
        #expect(redaction.redact("https://user@host/path and s3://bucket/key") == "https://user@host/path and s3://bucket/key")
        #expect(redaction.redact("GET /k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123 200")
            == "GET /k?X-Amz-Credential=<redacted>&X-Amz-Signature=<redacted> 200")
        #expect(redaction.redact("Authorization: Bearer abc.def") == "Authorization: Bearer <redacted>")
        #expect(redaction.redact("token pbk_Zm9vYmFy refused, share shr_abc") == "token pbk_<redacted> refused, share shr_<redacted>")
        #expect(redaction.redact("nothing secret here: 42 files, 3 bundles") == "nothing secret here: 42 files, 3 bundles")
    }

    @Test("a metadata value under a key that names a secret is dropped whole")
    func metadataKeys() {
        #expect(redaction.redact(value: "anything", key: "aws.secret_access_key") == "<redacted>")
        #expect(redaction.redact(value: "Basic dXNlcjpwYXNz", key: "http.authorization") == "<redacted>")
        #expect(redaction.redact(value: "DVD 12", key: "source.label") == "DVD 12")
    }
}

@Suite("Maintenance task settings")
struct MaintenanceSettingsTests {
    @Test("only the four names; parameters typed and checked with one line")
    func parameters() throws {
        #expect(throws: MaintenanceError.self) { try MaintenanceTaskName(parsing: "sh -c 'rm -rf /'") }
        #expect(try MaintenanceParameters.checked(.verifySample, percent: nil, sourceLabel: nil).percent == 5)
        #expect(try MaintenanceParameters.checked(.verifySample, percent: 100, sourceLabel: " ").percent == 100)
        for bad in [0, -1, 100.5, .nan, .infinity] {
            #expect(throws: MaintenanceError.self) { try MaintenanceParameters.checked(.verifySample, percent: bad, sourceLabel: nil) }
        }
        #expect(throws: MaintenanceError.self) { try MaintenanceParameters.checked(.exportCatalog, percent: 5, sourceLabel: nil) }
        #expect(throws: MaintenanceError.self) { try MaintenanceParameters.checked(.audit, percent: 5, sourceLabel: "DVD 12") }
        let audit = try MaintenanceParameters.checked(.audit, percent: nil, sourceLabel: " DVD \"12\" ")
        #expect(audit.json == #"{"source": "DVD \"12\""}"#)
        #expect(MaintenanceParameters(json: audit.json) == audit, "stored and read back")
        #expect(MaintenanceParameters(json: #"{"percent": 2.5}"#).displayText(for: .verifySample) == "percent 2.5")
        #expect(MaintenanceParameters().displayText(for: .audit) == "all sources")
    }

    @Test("intervals between a minute and a year, said in the largest whole unit")
    func schedule() throws {
        #expect(throws: MaintenanceError.self) { try MaintenanceSchedule.checked(everySeconds: 59) }
        #expect(throws: MaintenanceError.self) { try MaintenanceSchedule.checked(everySeconds: 366 * 86_400) }
        #expect(try MaintenanceSchedule.checked(everySeconds: 3600) == 3600)
        #expect(MaintenanceSchedule.text(everySeconds: 604_800) == "every 7 days")
        #expect(MaintenanceSchedule.text(everySeconds: 3600) == "every 1 hour")
        #expect(MaintenanceSchedule.text(everySeconds: 5400) == "every 90 minutes")
    }
}
