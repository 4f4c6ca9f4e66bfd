// The VTEP's MAC, stable across restarts and device re-creation. flanneld lets the kernel
// pick a random MAC whenever it creates the device, so after a reboot or a deleted device
// every peer holds stale neighbour and FDB entries until it sees the new lease. overlayd
// derives the MAC from a random seed kept in its state directory, this host's public
// address, the VNI and the family, so the same host gets the same MAC every time; hosts
// that share a state directory (simulated hosts on one machine) still get different ones.

import NetTypes
import SystemKit

public enum VTEPIdentity {
    /// The seed's file in the state directory.
    public static let seedFileName = "vtep-seed"
    static let seedLength = 16

    /// The seed in `directory`, created (random, mode 0600) when there is none. Several
    /// daemons creating it at once agree on one: only the first creation succeeds.
    public static func seed(in directory: String) throws(SystemError) -> [UInt8] {
        let path = directory + "/" + seedFileName
        if let existing = try readSeed(path) { return existing }
        try Files.makeDirectories(directory, permissions: 0o700)
        var generator = SystemRandomNumberGenerator()
        let fresh = (0..<seedLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
        if try Files.createExclusive(path, Array(hex(fresh).utf8) + [UInt8(ascii: "\n")], permissions: 0o600) {
            return fresh
        }
        guard let raced = try readSeed(path) else {
            throw SystemError(operation: "read", object: path, errno: .noSuchFileOrDirectory, message: "the seed vanished")
        }
        return raced
    }

    private static func readSeed(_ path: String) throws(SystemError) -> [UInt8]? {
        guard let text = try Files.readText(path) else { return nil }
        guard let bytes = unhex(text.filter { !$0.isWhitespace }), bytes.count == seedLength else {
            throw SystemError(operation: "read", object: path, errno: .invalidArgument,
                              message: "not a seed of \(seedLength) bytes in hex: remove it to make a new one")
        }
        return bytes
    }

    /// The MAC for a VTEP: a locally administered unicast address from a 64-bit FNV-1a hash
    /// of the seed, the public address, the VNI and the overlay family (a fixed function,
    /// unlike Swift's per-process Hasher, so the answer survives restarts and upgrades).
    public static func mac(seed: [UInt8], publicIP: IPAddress, vni: UInt32, family: IPAddress.Family) -> MACAddress {
        var input = seed + Array("\(publicIP)".utf8)
        input += withUnsafeBytes(of: vni.bigEndian, Array.init)
        input.append(family == .v4 ? 4 : 6)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in input {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        var bytes = withUnsafeBytes(of: hash.bigEndian, Array.init).prefix(6).map { $0 }
        bytes[0] = (bytes[0] & ~0x01) | 0x02   // unicast, locally administered
        return MACAddress(bytes: bytes)!
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
    }

    static func unhex(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: chars.count, by: 2) {
            guard let byte = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        return out
    }
}
