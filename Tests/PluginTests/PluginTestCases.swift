import XCTest
import TestSupport

/// Base of the bridge tests: a fresh TestWorld with a host netns (BridgeWorld) per test,
/// removed at teardown also when the test fails.
class BridgeTestCase: XCTestCase {
    var world: TestWorld!
    var bw: BridgeWorld!

    override func setUp() {
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
        bw = BridgeWorld(world)
    }
}

/// Base of the portmap tests: a host netns with a bridge and an outside netns (PortmapWorld);
/// servers started by the test are killed by PID and the world removed at teardown.
class PortmapTestCase: XCTestCase {
    var world: TestWorld!
    var pm: PortmapWorld!

    override func setUp() {
        world = TestWorld()
        pm = PortmapWorld(world)
        addTeardownBlock { [pm, world] in
            pm?.stopServers()
            world?.cleanup()
        }
    }
}
