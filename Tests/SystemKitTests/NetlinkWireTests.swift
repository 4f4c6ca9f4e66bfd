import XCTest
@testable import SystemKit

/// Extended acks parsed from hand-built NLMSG_ERROR messages (little-endian, as on the
/// machines we run on), and the retry of dumps a concurrent change interrupted.
final class NetlinkWireTests: XCTestCase {
    func message(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { NetlinkWire.extendedAckMessage($0) }
    }

    /// Capped ack (only the request's header echoed) with the text "bad".
    let capped: [UInt8] = [
        0x2c, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x03,  // len 44, NLMSG_ERROR, CAPPED | ACK_TLVS
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // seq 1, pid 0
        0xea, 0xff, 0xff, 0xff,                          // error -22
        0x20, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06,  // echoed header: len 32, RTM_NEWLINK, flags
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x08, 0x00, 0x01, 0x00, 0x62, 0x61, 0x64, 0x00,  // NLMSGERR_ATTR_MSG, len 8: "bad\0"
    ]

    /// Uncapped ack: the whole 20-byte request echoed, then an NLMSGERR_ATTR_OFFS before the text.
    let uncapped: [UInt8] = [
        0x40, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x02,  // len 64, NLMSG_ERROR, ACK_TLVS
        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xf0, 0xff, 0xff, 0xff,                          // error -16
        0x14, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06,  // echoed request, len 20
        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xaa, 0xbb, 0xcc, 0xdd,                          // its payload
        0x08, 0x00, 0x02, 0x00, 0x14, 0x00, 0x00, 0x00,  // NLMSGERR_ATTR_OFFS = 20
        0x10, 0x00, 0x01, 0x00,                          // NLMSGERR_ATTR_MSG, len 16
        0x44, 0x65, 0x76, 0x69, 0x63, 0x65, 0x20, 0x62, 0x75, 0x73, 0x79, 0x00,  // "Device busy\0"
    ]

    /// Uncapped, echoed request of 21 bytes (padded to 24), text "x" padded to 8.
    let unaligned: [UInt8] = [
        0x34, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x02,  // len 52
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xfe, 0xff, 0xff, 0xff,                          // error -2
        0x15, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06,  // echoed request, len 21
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x00, 0x00,  // 5 payload bytes + 3 padding
        0x06, 0x00, 0x01, 0x00, 0x78, 0x00, 0x00, 0x00,  // NLMSGERR_ATTR_MSG, len 6: "x\0" + padding
    ]

    func testCappedAckWithText() {
        XCTAssertEqual(message(capped), "bad")
    }

    func testUncappedAckSkipsTheEchoedRequestAndOtherAttributes() {
        XCTAssertEqual(message(uncapped), "Device busy")
        XCTAssertEqual(message(unaligned), "x")
    }

    func testAcksWithoutTLVsHaveNoText() {
        var plain = capped
        plain[7] = 0x01  // CAPPED only: the bytes after the header are not TLVs
        XCTAssertNil(message(plain))
        // A success ack: len 36, flags 0, error 0, echoed header.
        let success: [UInt8] = [0x24, 0, 0, 0, 0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            + [0x10, 0, 0, 0, 0x10, 0, 0x05, 0x06, 1, 0, 0, 0, 0, 0, 0, 0]
        XCTAssertNil(message(success))
        // TLVs, but none of them the text.
        var offsetsOnly = Array(uncapped[0..<48])
        offsetsOnly[0] = 48
        XCTAssertNil(message(offsetsOnly))
    }

    func testTruncatedAcksNeverReadPastTheirEnd() {
        // Every prefix of every message: the text is found only in the whole message, and no
        // prefix makes the parser read outside the buffer (debug builds trap on that).
        for full in [capped, uncapped, unaligned] {
            let text = message(full)
            XCTAssertNotNil(text)
            let textEnd = full.count - (full == unaligned ? 2 : 0)  // "x\0" ends 2 bytes before the padding
            for n in 0..<full.count {
                let got = message(Array(full[0..<n]))
                XCTAssertTrue(got == nil || n >= textEnd, "prefix \(n) of \(full.count) gave \(got ?? "")")
            }
        }
        // The header claims more than there is: parsing stops at the buffer's end.
        var claimsMore = capped
        claimsMore[0] = 0xff
        XCTAssertEqual(message(claimsMore), "bad")
        // An attribute longer than the message, or shorter than its own header.
        var overlong = capped
        overlong[36] = 0x40
        XCTAssertNil(message(overlong))
        var tooShort = capped
        tooShort[36] = 0x02
        XCTAssertNil(message(tooShort))
        // An echoed length beyond the message.
        var hugeEcho = uncapped
        hugeEcho[20] = 0xff; hugeEcho[21] = 0xff
        XCTAssertNil(message(hugeEcho))
    }

    // MARK: retryingInterruptedDump

    func interrupted() -> SystemError {
        SystemError(operation: "dump", object: "rules", errno: .interrupted, subsystem: "nftables")
    }

    func testADumpInterruptedAFewTimesIsStartedAgain() throws {
        var calls = 0
        let value = try NetlinkWire.retryingInterruptedDump("list", "rules", subsystem: "nftables") { () throws(SystemError) -> Int in
            calls += 1
            if calls <= 3 { throw interrupted() }
            return 42
        }
        XCTAssertEqual(value, 42)
        XCTAssertEqual(calls, 4)
    }

    func testTheLastAllowedAttemptMaySucceed() throws {
        var calls = 0
        let value = try NetlinkWire.retryingInterruptedDump("list", "rules", subsystem: nil) { () throws(SystemError) -> String in
            calls += 1
            if calls < NetlinkWire.dumpAttempts { throw interrupted() }
            return "done"
        }
        XCTAssertEqual(value, "done")
        XCTAssertEqual(calls, NetlinkWire.dumpAttempts)
    }

    func testADumpThatKeepsBeingInterruptedSaysTryAgainLater() {
        var calls = 0
        XCTAssertThrowsError(try NetlinkWire.retryingInterruptedDump("list tables", "ruleset", subsystem: "nftables") { () throws(SystemError) -> Int in
            calls += 1
            throw interrupted()
        }) { error in
            let e = error as? SystemError
            XCTAssertEqual(e?.kind, .tryAgain)
            XCTAssertEqual(e?.isTransient, true)
            XCTAssertEqual(e?.operation, "list tables")
            XCTAssertEqual(e?.object, "ruleset")
            XCTAssertEqual(e?.subsystem, "nftables")
            XCTAssertEqual(e?.errno, .interrupted)
            XCTAssertTrue(e?.message?.contains("try again later") == true, "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("nftables: list tables ruleset: "), "\(error)")
        }
        XCTAssertEqual(calls, NetlinkWire.dumpAttempts)
    }

    func testOtherErrorsAreNotRetried() {
        var calls = 0
        let gone = SystemError(operation: "dump", object: "table x", errno: .noSuchFileOrDirectory)
        XCTAssertThrowsError(try NetlinkWire.retryingInterruptedDump("list", "x", subsystem: nil) { () throws(SystemError) -> Int in
            calls += 1
            throw gone
        }) { error in
            XCTAssertEqual(error as? SystemError, gone)
        }
        XCTAssertEqual(calls, 1)
    }

    func testTheCallerSaysWhatCountsAsInterrupted() throws {
        var calls = 0
        let busy = SystemError(operation: "dump", object: "x", errno: .busy)
        let value = try NetlinkWire.retryingInterruptedDump("list", "x", subsystem: nil,
                                                            isInterrupted: { $0.errno == .busy }) { () throws(SystemError) -> Int in
            calls += 1
            if calls == 1 { throw busy }
            return 1
        }
        XCTAssertEqual(value, 1)
        XCTAssertEqual(calls, 2)
    }
}
