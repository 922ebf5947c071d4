import FathomModel
import FathomRecording
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore

/// Snapshots (`/mcp/snapshots…`), their export, and delayed dissection under the seeds' gRPC-style paths
/// (`/delayed_dissection.DelayedDissection/…`, JSON bodies).
extension AgentRoutes {
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()

    /// A JSON request body (at most 64 KiB) decoded as `T`; an empty body decodes as `{}`.
    static func body<T: Decodable>(_ type: T.Type, of request: Request) async throws -> T {
        var request = request
        let buffer = try await request.collectBody(upTo: 64 << 10)
        let data = buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer.readableBytesView)
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw APIError.badArgument("the body must be a JSON object: \(error)")
        }
    }

    /// Runs an async handler, turning API errors into JSON answers.
    static func answerAsync(_ body: () async throws -> Response) async -> Response {
        do {
            let response = try await body()
            return response
        } catch {
            return answer { throw error }
        }
    }

    /// The API over `db` (SNAPSHOT/DISSECTION), or `realTime` when no db is named.
    func database(_ db: String?, _ realTime: LocalAPI) throws -> LocalAPI {
        guard let db, !db.isEmpty else { return realTime }
        guard let snapshots else {
            throw APIError.notFound("no database `\(db)`: this agent keeps no snapshots; omit db for the real-time database")
        }
        return realTime.answering(from: try snapshots.dissections.database(db))
    }

    struct DissectionRequest: Decodable, Sendable {
        var snapshotName: String?
        var dissectionName: String?

        func names() throws -> (String, String) {
            guard let snapshotName, !snapshotName.isEmpty else { throw APIError.badArgument("`snapshot_name` is required") }
            guard let dissectionName, !dissectionName.isEmpty else {
                throw APIError.badArgument("`dissection_name` is required")
            }
            return (snapshotName, dissectionName)
        }
    }

    struct SnapshotList: Encodable {
        var snapshots: [SnapshotManifest]
        var budgetBytes: UInt64
        var usedBytes: UInt64
    }

    func addSnapshots(to router: Router<BasicRequestContext>, snapshots: Snapshots, realTime: LocalAPI) {
        router.post("/mcp/snapshots") { request, _ in
            await Self.answerAsync {
                let create = try await Self.body(Snapshots.CreateRequest.self, of: request)
                let now = UInt64(Date().timeIntervalSince1970 * 1e9)
                return Self.json(try snapshots.create(create, nowNanoseconds: now), status: .accepted)
            }
        }
        router.get("/mcp/snapshots") { _, _ in
            Self.json(SnapshotList(
                snapshots: snapshots.store.list(), budgetBytes: snapshots.store.configuration.budgetBytes,
                usedBytes: snapshots.store.usedBytes))
        }
        router.get("/mcp/snapshots/:name") { _, context in
            Self.answer { Self.json(try snapshots.manifest(context.parameters.get("name") ?? "")) }
        }
        router.delete("/mcp/snapshots/:name") { _, context in
            Self.answer {
                let name = context.parameters.get("name") ?? ""
                try snapshots.delete(name)
                return Self.json(["deleted": name])
            }
        }
        router.get("/mcp/snapshots/:name/pcap") { request, context in
            Self.answer {
                let q = QueryParameters(request.uri)
                let name = context.parameters.get("name") ?? ""
                let export = try snapshots.export(
                    name, startMs: try q.optionalInt("start"), endMs: try q.optionalInt("end"), bpf: q.string("bpf"),
                    kfl: q.string("kfl"), dissection: q.string("dissection"))
                return Self.stream(export, fileName: name + ".pcapng")
            }
        }
        router.get("/mcp/l7-data-boundaries") { _, _ in
            Self.answer { Self.json(try snapshots.l7Boundaries(realTime: realTime.realTimeCalls)) }
        }

        let service = "/delayed_dissection.DelayedDissection/"
        router.post(RouterPath(service + "Start")) { request, _ in
            await Self.answerAsync {
                let (snapshot, dissection) = try await Self.body(DissectionRequest.self, of: request).names()
                return Self.json(try snapshots.dissections.start(snapshot: snapshot, dissection: dissection), status: .accepted)
            }
        }
        // GetStatus and List answer GET with query arguments and POST with a JSON body alike.
        for method in [HTTPRequest.Method.get, .post] {
            router.on(RouterPath(service + "GetStatus"), method: method) { request, _ in
                await Self.answerAsync {
                    let (snapshot, dissection) = try await Self.dissectionArguments(request).names()
                    return Self.json(try snapshots.dissections.status(snapshot: snapshot, dissection: dissection))
                }
            }
            router.on(RouterPath(service + "List"), method: method) { request, _ in
                await Self.answerAsync {
                    let snapshot = try await Self.dissectionArguments(request).snapshotName
                    return Self.json(["dissections": snapshots.dissections.list(snapshot: snapshot)])
                }
            }
        }
        router.post(RouterPath(service + "Stop")) { request, _ in
            await Self.answerAsync {
                let (snapshot, dissection) = try await Self.body(DissectionRequest.self, of: request).names()
                return Self.json(try snapshots.dissections.stop(snapshot: snapshot, dissection: dissection))
            }
        }
        router.post(RouterPath(service + "Delete")) { request, _ in
            await Self.answerAsync {
                let (snapshot, dissection) = try await Self.body(DissectionRequest.self, of: request).names()
                try snapshots.dissections.delete(snapshot: snapshot, dissection: dissection)
                return Self.json(["deleted": snapshot + "/" + dissection])
            }
        }
    }

    private static func dissectionArguments(_ request: Request) async throws -> DissectionRequest {
        if request.method == .get {
            let q = QueryParameters(request.uri)
            return DissectionRequest(snapshotName: q.string("snapshot_name"), dissectionName: q.string("dissection_name"))
        }
        return try await body(DissectionRequest.self, of: request)
    }

    /// Sends an export as it is produced; the first chunk is made before answering, so a file that cannot be read
    /// is an error answer rather than a cut-off download.
    static func stream(_ export: SnapshotExport, fileName: String) -> Response {
        let box = ExportBox(export)
        return Response(
            status: .ok,
            headers: [.contentType: "application/x-pcapng", .contentDisposition: "attachment; filename=\"\(fileName)\""],
            body: ResponseBody { writer in
                while let chunk = try box.next() {
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
                try await writer.finish(nil)
            })
    }
}

/// Hands an export to the response body's task; the body is written by one task at a time.
private final class ExportBox: @unchecked Sendable {
    private let export: SnapshotExport
    init(_ export: SnapshotExport) { self.export = export }
    func next() throws -> [UInt8]? { try export.nextChunk() }
}
