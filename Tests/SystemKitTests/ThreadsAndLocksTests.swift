import Foundation
import Glibc
import XCTest
@testable import SystemKit

final class ThreadsAndLocksTests: XCTestCase {
    struct StepError: Error, Equatable { let step: Int }

    func testRunReturnsItsValueFromAnotherThread() throws {
        let caller = Threads.currentID
        let worker = try Threads.run { Threads.currentID }
        XCTAssertNotEqual(worker, caller)
        XCTAssertEqual(try Threads.run { "value" }, "value")
    }

    func testRunRethrowsWhatTheWorkThrew() {
        XCTAssertThrowsError(try Threads.run { () throws -> Int in throw StepError(step: 7) }) { error in
            XCTAssertEqual(error as? StepError, StepError(step: 7))
        }
    }

    func testRunConcurrentlyRunsTheStepsAtOnce() {
        // Each step waits until every step has started: only concurrent steps get past that.
        let n = 6
        let lock = Lock()
        nonisolated(unsafe) var arrived = 0
        nonisolated(unsafe) var threads: Set<Int32> = []
        let steps: [@Sendable () throws -> Void] = (0..<n).map { i in
            {
                lock.withLock { arrived += 1; threads.insert(Threads.currentID) }
                let deadline = Date.now.addingTimeInterval(10)
                while lock.withLock({ arrived }) < n {
                    if Date.now > deadline { throw StepError(step: i) }
                    usleep(1000)
                }
            }
        }
        let errors = Threads.runConcurrently(steps)
        XCTAssertTrue(errors.isEmpty, "steps did not run at once: \(errors)")
        XCTAssertEqual(threads.count, n)
        XCTAssertTrue(threads.contains(Threads.currentID), "the first step runs on the calling thread")
    }

    func testRunConcurrentlyReportsErrorsInStepOrder() {
        // Later steps fail first; the errors still come back in step order.
        let steps: [@Sendable () throws -> Void] = (0..<4).map { i in
            {
                usleep(useconds_t((4 - i) * 30_000))
                if i != 2 { throw StepError(step: i) }
            }
        }
        let errors = Threads.runConcurrently(steps).map { $0 as? StepError }
        XCTAssertEqual(errors, [StepError(step: 0), StepError(step: 1), StepError(step: 3)])
        XCTAssertTrue(Threads.runConcurrently([]).isEmpty)
    }

    func testLockMakesIncrementsExact() {
        let lock = Lock()
        nonisolated(unsafe) var counter = 0
        let steps: [@Sendable () throws -> Void] = (0..<8).map { _ in
            { for _ in 0..<10_000 { lock.withLock { counter += 1 } } }
        }
        XCTAssertTrue(Threads.runConcurrently(steps).isEmpty)
        XCTAssertEqual(counter, 80_000)
    }

    func testFileLockExcludesASecondLockerUntilReleased() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/lock"
        let first = try FileLock(path: path)
        let lock = Lock()
        nonisolated(unsafe) var secondAcquired: Date?
        nonisolated(unsafe) var released: Date?
        nonisolated(unsafe) var heldWhileFirstHeld = false
        let errors = Threads.runConcurrently([
            {
                // The holder: keeps the lock a while, checks the second locker is still waiting.
                usleep(300_000)
                lock.withLock { heldWhileFirstHeld = secondAcquired != nil; released = .now }
                first.unlock()
            },
            {
                let second = try FileLock(path: path)
                lock.withLock { secondAcquired = .now }
                second.unlock()
            },
        ])
        XCTAssertTrue(errors.isEmpty, "\(errors)")
        XCTAssertFalse(heldWhileFirstHeld, "the second locker got the lock while the first held it")
        let got = try XCTUnwrap(secondAcquired), freed = try XCTUnwrap(released)
        XCTAssertGreaterThanOrEqual(got, freed)
        // withLock releases on the way out, also when the body throws.
        XCTAssertThrowsError(try FileLock.withLock(path) { throw StepError(step: 1) })
        XCTAssertEqual(try FileLock.withLock(path) { 5 }, 5)
    }

    func testFileLockRefusesASymlink() throws {
        let dir = try makeTemporaryDirectory()
        XCTAssertEqual(symlink(dir + "/elsewhere", dir + "/lock"), 0)
        XCTAssertThrowsError(try FileLock(path: dir + "/lock")) { error in
            XCTAssertEqual((error as? SystemError)?.errno, .loop)
        }
        XCTAssertNil(try Files.linkStatus(dir + "/elsewhere"))
    }

    /// `attempt` never waits: nil while another FileLock (of this very process too) holds it.
    func testFileLockAttemptReturnsNilWhileHeldAndTheLockOnceFree() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/lock"
        let holder = try FileLock(path: path)
        XCTAssertNil(try FileLock.attempt(path: path))
        holder.unlock()
        let taken = try XCTUnwrap(try FileLock.attempt(path: path))
        XCTAssertNil(try FileLock.attempt(path: path))
        taken.unlock()
        XCTAssertNotNil(try FileLock.attempt(path: path))
        XCTAssertThrowsError(try FileLock.attempt(path: dir + "/missing/lock")) { error in
            XCTAssertEqual((error as? SystemError)?.kind, .notFound)
        }
    }
}
