// How helpers that cannot throw (they are called from many tests as plain functions) fail
// the running test: the error is recorded at the caller's line, and a fallback value lets
// the test go on to report what else it finds. The recorder is a variable so that the test
// proving every helper fails loudly can capture the failures instead of failing itself
// (XCTExpectFailure does not exist in Linux XCTest).

import XCTest

public enum TestFailures {
    /// Records one failure of the running test at `file:line`. XCTFail unless a test swapped it.
    nonisolated(unsafe) public static var record: (_ message: String, _ file: StaticString, _ line: UInt) -> Void = {
        XCTFail($0, file: $1, line: $2)
    }

    /// Runs `body`; what it throws becomes a failure of the running test at `file:line`,
    /// and `fallback` is returned instead.
    public static func reporting<T>(_ fallback: @autoclosure () -> T, file: StaticString, line: UInt,
                                    _ body: () throws -> T) -> T {
        do {
            return try body()
        } catch {
            record("\(error)", file, line)
            return fallback()
        }
    }

    /// Runs `body` with every failure a helper records captured instead of failing the test;
    /// returns what `body` returned and the captured messages.
    public static func capturing<T>(_ body: () throws -> T) rethrows -> (T, [String]) {
        let saved = record
        nonisolated(unsafe) var messages: [String] = []
        record = { message, _, _ in messages.append(message) }
        defer { record = saved }
        let value = try body()
        return (value, messages)
    }
}
