#if canImport(Glibc)
import Glibc
#endif
import Foundation
import IngotCLI
import IngotCore
import IngotForward

// OpenBLAS falls back to SSE3 kernels on CPUs it does not know (2.6× slower here); ask for the right ones.
BLASCore.overrideIfMisdetected()
// Ingot runs OpenBLAS on one thread inside its own workers; its idle pool would spin on a core meanwhile.
BLAS.useSingleThreadedKernels()

// A file-size limit (ulimit -f) must surface as a write error, not kill the process mid-write.
signal(SIGXFSZ, SIG_IGN)

// Activation-sized buffers are reused from the heap; layer-sized ones are mapped on their own (see HeapPolicy).
HeapPolicy.install()

// Temporaries and destination locks are removed on SIGINT/SIGTERM/SIGHUP and at exit.
Destinations.installSignalCleanup()

// Exit codes: 0 success, 1 a check or gate failed, 2 usage or input error (argument-parser's own usage errors
// would exit 64; scripts expect one code for "bad input").
do {
    var command = try IngotCommand.parseAsRoot(NegativeNumbers.attach(Array(CommandLine.arguments.dropFirst())))
    try IngotCommand.execute(&command)
} catch {
    if IngotCommand.exitCode(for: error) == .validationFailure {
        // One line, as for every other input error (`ingot COMMAND --help` shows the usage).
        let message = IngotCommand.message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
        FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
        exit(2)
    }
    IngotCommand.exit(withError: error)
}
