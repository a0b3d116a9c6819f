import PipelineCore
import Testing

@Suite("Tiers: the warm class setting and the list prices")
struct StorageTierTests {
    func load(_ environment: [String: String]) throws -> PipelineConfiguration {
        try ConfigurationLoader(environment: environment, homeDirectory: "/home/ada", isRoot: false).load()
    }

    @Test("BACKUP_WARM_STORAGE_CLASS: GLACIER_IR by default, STANDARD_IA and STANDARD accepted, any class that needs a restore refused in one line")
    func warmClass() throws {
        let key = ConfigurationLoader.Key.warmStorageClass
        #expect(try load([:]).warmStorageClass == .glacierInstantRetrieval)
        #expect(try load([:]).tierClasses == TierStorageClasses(cold: .deepArchive, warm: .glacierInstantRetrieval))
        #expect(try load([key: "standard_ia"]).warmStorageClass == .standardInfrequentAccess)
        #expect(try load([key: "STANDARD"]).warmStorageClass == .standard)
        #expect(try load([key: "STANDARD_IA", "BACKUP_ARCHIVE_STORAGE_CLASS": "GLACIER"]).tierClasses[.cold] == .glacier)
        for refused in ["DEEP_ARCHIVE", "GLACIER", "WARM"] {
            #expect(throws: ConfigurationError(setting: key, problem: "must be GLACIER_IR, STANDARD_IA, STANDARD (a class that reads back at once)")) {
                try load([key: refused])
            }
        }
        #expect(try load([:]).redactedSummary.contains("BACKUP_WARM_STORAGE_CLASS=GLACIER_IR"))
    }

    @Test("monthly storage at list price: 1 GiB and 1 TiB in each tier's default class")
    func pricing() {
        let gib = Int64(1) << 30
        #expect(StoragePricing.monthlyUSD(bytes: gib, storageClass: .glacierInstantRetrieval) == 0.004)
        #expect(StoragePricing.monthlyUSD(bytes: gib, storageClass: .standardInfrequentAccess) == 0.0125)
        #expect(abs(StoragePricing.monthlyUSD(bytes: 1024 * gib, storageClass: .deepArchive) - 1.01376) < 1e-9)
        #expect(StoragePricing.monthlyUSD(bytes: -1, storageClass: .standard) == 0)
        for name in StorageClass.known { #expect(StoragePricing.usdPerGBMonth[name] != nil, "\(name) unpriced") }
    }
}
