import XCTest
import CNI
@testable import TuningPlugin

final class SysctlKeyTests: XCTestCase {
    func testPlaceholder() {}
}
