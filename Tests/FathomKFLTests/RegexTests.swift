@testable import FathomKFL
import XCTest

/// The linear-time matcher behind `matches`: RE2 partial-match semantics, and no catastrophic backtracking.
final class RegexTests: XCTestCase {
    static let cases: [(pattern: String, text: String, matches: Bool)] = [
        ("abc", "xxabcxx", true),
        ("^abc", "xxabc", false),
        ("^abc$", "abc", true),
        ("abc$", "abcd", false),
        ("a.c", "a-c", true),
        ("a.c", "a\nc", false),
        ("(?s)a.c", "a\nc", true),
        ("(?i)HeLLo", "say hello", true),
        ("(?i)[A-Z]+$", "abc", true),
        ("colou?r", "color", true),
        ("colou?r", "colour", true),
        ("ab*c", "ac", true),
        ("ab+c", "ac", false),
        ("a{2,3}", "caac", true),
        ("^a{2,3}$", "aaaa", false),
        ("^a{2,}$", "aaaaa", true),
        ("^a{3}$", "aaa", true),
        ("x{", "x{", true),
        ("^(cat|dog)s?$", "dogs", true),
        ("^(cat|dog)s?$", "cow", false),
        ("(?:ab)+", "xababx", true),
        ("(?P<word>\\w+)@", "me@x", true),
        ("\\d{3}-\\d{4}", "call 555-1234", true),
        ("\\D", "123", false),
        ("\\s", "a b", true),
        ("\\S", "   ", false),
        ("[^0-9]", "123", false),
        ("[^0-9]", "12a", true),
        ("[\\d_]+", "__1", true),
        ("[a\\-z]", "-", true),
        ("[]a]", "]", true),
        ("\\bfoo\\b", "a foo b", true),
        ("\\bfoo\\b", "afoob", false),
        ("\\Bfoo", "afoo", true),
        ("\\.", "a.b", true),
        ("\\.", "ab", false),
        ("\\x41", "A", true),
        ("\\x{65e5}", "日本", true),
        ("^日本$", "日本", true),
        ("^.$", "日", true),
        ("[日月]", "月曜日", true),
        ("\\Aab\\z", "ab", true),
        ("", "anything", true),
        ("a|", "zzz", true),
        ("^/api/v[0-9]+/cart", "/api/v12/cart/items", true),
        ("^/api/v[0-9]+/cart", "/static/app.js", false),
    ]

    func testMatchesLikeRE2() throws {
        for (pattern, text, expected) in Self.cases {
            let regex = try KFLRegex(pattern)
            XCTAssertEqual(regex.matches(text), expected, "\(pattern) on \(text)")
        }
    }

    func testRejectsInvalidAndUnsupportedPatterns() {
        for pattern in ["(", ")", "[a", "a**", "*a", "\\p{L}", "(?=x)", "a{2,1}", "a{1001}", "\\"] {
            XCTAssertThrowsError(try KFLRegex(pattern), pattern)
        }
    }

    /// Patterns that take exponential time in a backtracking engine finish at once here.
    func testPathologicalPatternsRunInLinearTime() throws {
        let text = String(repeating: "a", count: 20_000) + "!"
        for pattern in ["(a*)*b", "(a|a)*b", "(a+)+$x", "^(a|aa)*c$", "(.*a){20}b"] {
            let regex = try KFLRegex(pattern)
            XCTAssertFalse(regex.matches(text), pattern)
        }
    }
}
