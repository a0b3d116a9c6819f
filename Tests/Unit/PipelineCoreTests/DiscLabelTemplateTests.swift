import PipelineCore
import Testing

@Suite struct DiscLabelTemplateTests {
    @Test func placeholdersAreFilledAndSpacesTidied() throws {
        let template = try DiscLabelTemplate("{volume} #{n}")
        #expect(template.label(volume: "HOLIDAY 2008", created: nil, number: 3) == "HOLIDAY 2008 #3")
        let dated = try DiscLabelTemplate("  {created} {volume}  ({n}) {{raw}} ")
        #expect(dated.label(volume: "DVD", created: "2008-07-14", number: 1) == "2008-07-14 DVD (1) {raw}")
        #expect(dated.label(volume: "DVD", created: nil, number: 1) == "DVD (1) {raw}")
        let counterOnly = try DiscLabelTemplate("Disc {n}")
        #expect(template.usesVolume && !counterOnly.usesVolume)
    }

    @Test(arguments: [
        ("{volume}", "it must contain {n}"),
        ("{volume} {x} {n}", "unknown placeholder {x}"),
        ("{volume #{n}", "unknown placeholder {volume #{n}"),
        ("{n} {volume", "is not closed"),
        ("{n} }", "without its"),
    ])
    func badTemplatesSayWhy(_ text: String, _ expected: String) {
        #expect(throws: DiscLabelTemplateError.self) { try DiscLabelTemplate(text) }
        do {
            _ = try DiscLabelTemplate(text)
        } catch {
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test func theFirstFreeNumberIsTaken() async throws {
        let template = try DiscLabelTemplate("{volume} #{n}")
        let taken: Set = ["PHOTOS #1", "PHOTOS #2", "PHOTOS #4"]
        let label = try await template.firstFreeLabel(volume: "PHOTOS", created: nil, from: 1) { taken.contains($0) }
        #expect(label == "PHOTOS #3")
        #expect(try await template.firstFreeLabel(volume: "PHOTOS", created: nil, from: 4) { taken.contains($0) } == "PHOTOS #5")
    }

    @Test func volumeNamesAreMadeReadable() {
        #expect(DiscVolumeName.display("HOLIDAY_2008   ") == "HOLIDAY 2008")
        #expect(DiscVolumeName.display("  \u{0}\u{1} ") == nil)
        #expect(DiscVolumeName.display("__") == nil)
    }
}
