import Foundation
import XCTest
import TestSupport

/// The kernel-feature probe decides whether a test takes its feature-less path or skips, so a
/// failing `ip` must fail the test instead of looking like a kernel without the feature.
final class KernelFeaturesTests: XCTestCase {
    func testVLANFilteringProbeAnswersLeavesNothingAndFailsLoudly() throws {
        let world = TestWorld()
        addTeardownBlock { world.cleanup() }
        let ns = try world.makeNetns("probe")
        // Either answer is right for some kernel; the probe bridge is gone afterwards.
        let supported = try KernelFeatures.bridgeVLANFiltering(in: ns)
        XCTAssertEqual(try world.readIPJSON(ns, ["link", "show", "type", "bridge"]).count, 0, "supported: \(supported)")
        // A netns that is not there is a broken test world, never "unsupported".
        let missing = "\(TestWorld.namePrefix)\(world.tag)-missing"
        XCTAssertThrowsError(try KernelFeatures.bridgeVLANFiltering(in: missing)) { error in
            XCTAssertTrue("\(error)".contains("ip -n \(missing) link add") && "\(error)".contains(missing), "\(error)")
        }
    }
}
