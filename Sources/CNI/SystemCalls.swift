// System-layer calls inside the CNI library's `throws(CNIError)` functions: a SystemError
// becomes the CNI error of its kind (CNIError.init(_:context:)).

import SystemKit

/// Runs `body` and turns a SystemError it throws into a CNIError.
@inline(__always)
func io<T>(_ body: () throws(SystemError) -> T) throws(CNIError) -> T {
    do {
        return try body()
    } catch {
        throw CNIError(error)
    }
}
