// Validation of the names CNI uses as parts of paths and keys: network names, container IDs
// and interface names, following libcni's rules.
//
// libcni (pkg/utils) allows network names and container IDs matching
// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`. With that rule neither can contain "/" nor start with ".",
// so neither can escape a directory it is joined to. Anything that could (a "/", a NUL,
// a leading ".") is rejected with code 7 (design decision 5); other characters outside the
// set are rejected with libcni's codes (7 for a network name, 4 for a container ID, which
// comes from the environment).

/// True for `[A-Za-z0-9][A-Za-z0-9_.-]*`.
public func isValidCNIIdentifier(_ s: String) -> Bool {
    let b = Array(s.utf8)
    guard let first = b.first, isAlnum(first) else { return false }
    return b.dropFirst().allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
}

private func isAlnum(_ c: UInt8) -> Bool {
    (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
}

/// True when joining `s` to a directory could leave it (or name the directory itself).
func couldEscapeDirectory(_ s: String) -> Bool {
    s.contains("/") || s.hasPrefix(".") || s.utf8.contains(0)
}

/// Network name: non-empty, `[A-Za-z0-9][A-Za-z0-9_.-]*`. Code 7 otherwise.
public func validateNetworkName(_ name: String) throws(CNIError) {
    guard !name.isEmpty else { throw CNIError.invalidConfig("missing network name") }
    guard isValidCNIIdentifier(name) else {
        throw CNIError.invalidConfig("invalid characters found in network name \"\(name)\"",
                                     details: "a network name must match [A-Za-z0-9][A-Za-z0-9_.-]*")
    }
}

/// Container ID: non-empty (code 4), no path escape (code 7), libcni's character set (code 4).
public func validateContainerID(_ id: String) throws(CNIError) {
    guard !id.isEmpty else { throw CNIError.invalidEnvironment("missing containerID") }
    if couldEscapeDirectory(id) {
        throw CNIError.invalidConfig("container ID \"\(id)\" could escape a directory",
                                     details: "a container ID must match [A-Za-z0-9][A-Za-z0-9_.-]*")
    }
    guard isValidCNIIdentifier(id) else {
        throw CNIError.invalidEnvironment("invalid characters in containerID \"\(id)\"",
                                          details: "a container ID must match [A-Za-z0-9][A-Za-z0-9_.-]*")
    }
}

/// Interface name as the kernel accepts it: 1-15 bytes, not "." or "..", no "/", ":" or
/// white space. Code 4 (it comes from CNI_IFNAME).
public func validateInterfaceName(_ name: String) throws(CNIError) {
    guard !name.isEmpty else { throw CNIError.invalidEnvironment("interface name is empty") }
    guard name.utf8.count <= 15 else {
        throw CNIError.invalidEnvironment("interface name \"\(name)\" is longer than 15 characters")
    }
    guard name != ".", name != ".." else { throw CNIError.invalidEnvironment("interface name \"\(name)\" is not allowed") }
    for c in name.utf8 where c == UInt8(ascii: "/") || c == UInt8(ascii: ":") || c <= 32 || c == 127 {
        throw CNIError.invalidEnvironment("interface name \"\(name)\" contains an invalid character")
    }
}
