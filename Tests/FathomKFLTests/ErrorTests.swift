import FathomKFL
import XCTest

/// Every rejected expression is an error with an exact message and position, never an empty result.
final class ErrorTests: XCTestCase {
    static let cases: [(expression: String, kind: KFLError.Kind, position: String, message: String)] = [
        ("response.stauts == 503", .unknownField, "1:1",
         "unknown field `response.stauts`; did you mean `response.status` (alias of `status_code`)?"),
        (#"status_code == "503""#, .typeMismatch, "1:13", #"cannot compare `status_code` (int) with "503" (string) using `==`"#),
        (#"path.startswith("/api")"#, .unknownFunction, "1:6", "unknown function `startswith`; did you mean `startsWith`?"),
        ("status_code ==", .syntax, "1:15", "expected an expression, found end of input"),
        ("(http", .syntax, "1:6", "expected `)` to close the parenthesis, found end of input"),
        (#"path == "abc"#, .syntax, "1:9", "unterminated string literal"),
        (#"path = "/x""#, .syntax, "1:6", "unexpected `=`; use `==` to compare"),
        ("status_code", .typeMismatch, "1:1", "a filter must be a bool expression, found `status_code` (int)"),
        (#"path matches "(""#, .invalidRegex, "1:14", "invalid regular expression: missing `)`"),
        (#"duration("5x") > duration("1s")"#, .invalidLiteral, "1:10",
         #"invalid duration "5x"; expected a number and unit like "5m", "1h30m" or "250ms""#),
        ("path.contains(1)", .typeMismatch, "1:15", "`contains` needs a string argument, found 1 (int)"),
        ("http && stat_code == 5", .unknownField, "1:9", "unknown field `stat_code`; did you mean `status_code`?"),
        ("http # x", .syntax, "1:6", "unexpected character `#`"),
        ("size(1)", .typeMismatch, "1:6", "`size` needs a string, bytes, list or map, found 1 (int)"),
        (#"src.pod.nmae == "x""#, .unknownField, "1:1", "unknown field `src.pod.nmae`; did you mean `src.pod.name`?"),
        ("path.contains()", .typeMismatch, "1:6", "`.contains()` takes 1 argument, found 0"),
        ("http && 5", .typeMismatch, "1:9", "each side of `&&` must be a bool expression, found 5 (int)"),
        ("1 + 1.0 == 2.0", .typeMismatch, "1:3",
         "no `+` for 1 (int) and 1.0 (double); convert one side with int(), uint() or double()"),
        ("http || 5", .typeMismatch, "1:9", "`||` needs a bool, found 5 (int)"),
        ("http &&\n  respons.status == 5", .unknownField, "2:3",
         "unknown field `respons.status`; did you mean `response.status` (alias of `status_code`)?"),
        ("xyzzy", .unknownField, "1:1", "unknown field `xyzzy`"),
        (#"src.pod contains "a" "b""#, .syntax, "1:22", "expected an operator or end of input, found string"),
        (#"path == "日本" && 名前"#, .syntax, "1:17", "unexpected character `名`"),
        (#"timestamp > timestamp("yesterday")"#, .invalidLiteral, "1:23",
         #"invalid timestamp "yesterday"; expected RFC 3339 like "2024-05-01T12:00:00Z""#),
        ("status_code < path", .typeMismatch, "1:13", "cannot compare `status_code` (int) with `path` (string) using `<`"),
        (#"status_code in ["500"]"#, .typeMismatch, "1:13", #"cannot look for `status_code` (int) in ["500"] (list(string))"#),
        ("request.headers[1]", .typeMismatch, "1:17", "`request.headers` (map(string, string)) has string keys, not 1 (int)"),
        (#"http ? 1 : "a""#, .typeMismatch, "1:6", #"the branches of `?:` differ: 1 (int) and "a" (string)"#),
        ("99999999999999999999 > 1", .invalidLiteral, "1:1", "integer literal out of range"),
        (String(repeating: "(", count: 300) + "http" + String(repeating: ")", count: 300), .syntax, "1:251",
         "expression nests too deeply"),
    ]

    func testErrorsCarryExactMessagesAndPositions() {
        for (expression, kind, position, message) in Self.cases {
            do {
                let filter = try KFL.compile(expression)
                XCTFail("\(expression) compiled to \(filter.source); expected an error")
            } catch {
                XCTAssertEqual(error.message, message, expression)
                XCTAssertEqual(error.kind, kind, expression)
                XCTAssertEqual("\(error.position)", position, expression)
                XCTAssertEqual(error.description, "\(position): \(message)", expression)
            }
        }
    }

    func testUnknownFieldListsNearestNamesAndOffset() throws {
        do {
            _ = try KFL.compile("http && response.stauts == 503")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.position.offset, 8)
            XCTAssertEqual(error.suggestions.first, "response.status")
            XCTAssertEqual(error.expected, ["field"])
        }
    }

    func testOffsetsCountUTF8BytesAndColumnsCountScalars() {
        do {
            _ = try KFL.compile(#"path == "日本" && nope"#)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.position.offset, 20)
            XCTAssertEqual(error.position.column, 17)
        }
    }
}
