import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import Alerts
import SystemIO
import Catalog

enum StatusJSON {
    static func encode(_ snapshot: StatusSnapshot) throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(snapshot)
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
