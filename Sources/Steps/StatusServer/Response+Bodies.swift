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

extension Response {
    static func text(_ text: String, contentType: String) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func bytes(_ data: Data, contentType: String) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
