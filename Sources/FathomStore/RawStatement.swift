import GRDB
import GRDBSQLite
#if canImport(Glibc)
import Glibc
#endif

/// A prepared SQLite statement driven through the C API, for the two hot loops (batched insert and scan): GRDB's
/// Row and StatementArguments allocate per row, which cost more than SQLite itself.
struct RawStatement: ~Copyable {
    private let handle: OpaquePointer
    private let sql: String

    init(_ db: Database, sql: String) throws(StoreError) {
        var statement: OpaquePointer?
        guard let connection = db.sqliteConnection,
              sqlite3_prepare_v2(connection, sql, -1, &statement, nil) == SQLITE_OK, let statement
        else {
            throw StoreError("cannot prepare `\(sql)`: \(db.sqliteConnection.map { String(cString: sqlite3_errmsg($0)) } ?? "closed")")
        }
        self.handle = statement
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    /// Binds parameter `index` (1-based).
    func bind(_ index: Int32, _ value: StorePredicate.Value) {
        switch value {
        case .integer(let number): sqlite3_bind_int64(handle, index, number)
        case .double(let number): sqlite3_bind_double(handle, index, number)
        case .text(let text): bind(index, text)
        }
    }

    func bind(_ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else {
                _ = sqlite3_bind_text(handle, index, "", 0, transientDestructor)
                return
            }
            _ = sqlite3_bind_text(handle, index, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), Int32(bytes.count),
                                  transientDestructor)
        }
    }

    func bind(_ index: Int32, _ number: Int64) { sqlite3_bind_int64(handle, index, number) }

    func bind(_ index: Int32, _ number: Double) { sqlite3_bind_double(handle, index, number) }

    func bind(_ index: Int32, blob bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            _ = sqlite3_bind_blob(handle, index, buffer.baseAddress, Int32(buffer.count), transientDestructor)
        }
    }

    /// Binds bytes that SQLite reads in place: they must stay unchanged until the statement is stepped and reset.
    func bindUnretained(_ index: Int32, _ bytes: UnsafeRawBufferPointer, isBlob: Bool) {
        guard let base = bytes.baseAddress else {
            // No address would bind NULL: an empty value is copied instead.
            _ = isBlob ? sqlite3_bind_zeroblob(handle, index, 0) : sqlite3_bind_text(handle, index, "", 0, transientDestructor)
            return
        }
        if isBlob {
            sqlite3_bind_blob(handle, index, base, Int32(bytes.count), staticDestructor)
        } else {
            sqlite3_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), staticDestructor)
        }
    }

    /// True while a row is available; false when done.
    func step() throws(StoreError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code: throw StoreError("`\(sql)` failed: \(String(cString: sqlite3_errstr(code)))")
        }
    }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }

    /// The column's text; SQLite's own bytes are copied once into the String.
    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// The column's text through `recent`, which hands back an equal String it already made when it can.
    func text(_ column: Int32, _ recent: inout RecentTexts) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        return recent.text(UnsafeBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(handle, column))))
    }

    /// The column's bytes, valid until the next step.
    func blob(_ column: Int32) -> UnsafeRawBufferPointer {
        guard let pointer = sqlite3_column_blob(handle, column) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(handle, column)))
    }
}

/// The last few distinct values read from one text column: a scan over a column with few values (protocol, method,
/// path, names) reuses their Strings instead of allocating one per row.
struct RecentTexts {
    private var values: [String] = []
    private var oldest = 0
    private static let capacity = 8

    init() {}

    mutating func text(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        for index in values.indices {
            let same = values[index].utf8.withContiguousStorageIfAvailable { known in
                guard known.count == bytes.count else { return false }
                guard let base = known.baseAddress, let other = bytes.baseAddress else { return true }
                return memcmp(base, other, bytes.count) == 0
            }
            if same == true { return values[index] }
        }
        let made = String(decoding: bytes, as: UTF8.self)
        if values.count < Self.capacity {
            values.append(made)
        } else {
            values[oldest] = made
            oldest = (oldest + 1) % Self.capacity
        }
        return made
    }
}

/// SQLITE_STATIC: SQLite reads the bound bytes where they are.
private let staticDestructor = unsafeBitCast(0, to: sqlite3_destructor_type.self)

/// SQLITE_TRANSIENT: SQLite copies the bound bytes before the call returns.
private let transientDestructor = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
