// atomic-write-probe: a program for tests only. It replaces PATH with CONTENT through
// Files.writeAtomically, and between writing the temporary file and renaming it over PATH it
// says "ready TEMPORARY-PATH" on stdout and stops for good. SystemKitTests kills it there
// (SIGKILL) to show that a crash at that point leaves the old file as it was.
//
// Usage: atomic-write-probe PATH CONTENT

import Glibc
import SystemKit

func fail(_ message: String) -> Never {
    // The exit status is the report; the message is a courtesy that may itself fail.
    try? FileDescriptor.standardError.writeAll(Array("atomic-write-probe: \(message)\n".utf8))
    exit(1)
}

let args = CommandLine.arguments
guard args.count == 3 else { fail("usage: atomic-write-probe PATH CONTENT") }

Files.beforeRename = { tmp in
    try FileDescriptor.standardOutput.writeAll(Array("ready \(tmp)\n".utf8))
    while true { pause() }
}
do {
    try Files.writeAtomically(args[1], Array(args[2].utf8))
} catch {
    fail("\(error)")
}
fail("the rename happened: the probe was not stopped before it")
