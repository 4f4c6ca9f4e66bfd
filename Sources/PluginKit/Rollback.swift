// Undo steps registered while an ADD makes changes: on failure they run in reverse order,
// each one's own failure ignored (the original error is what the runtime must see).

public struct Rollback {
    private var steps: [(String, () throws -> Void)] = []
    public init() {}

    /// Registers `undo` to run if the operation fails later.
    public mutating func register(_ what: String, _ undo: @escaping () throws -> Void) {
        steps.append((what, undo))
    }

    /// Runs every registered step, newest first, ignoring their errors; then forgets them.
    public mutating func run() {
        // An undo that fails must not hide the failure that made the operation roll back.
        for (_, undo) in steps.reversed() { try? undo() }
        steps = []
    }

    /// Forgets the steps: the operation succeeded.
    public mutating func commit() { steps = [] }
}
