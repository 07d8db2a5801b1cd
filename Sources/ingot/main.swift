#if canImport(Glibc)
import Glibc
#endif
import Foundation
import IngotCLI

// A file-size limit (ulimit -f) must surface as a write error, not kill the process mid-write.
signal(SIGXFSZ, SIG_IGN)

// Exit codes: 0 success, 1 a check or gate failed, 2 usage or input error (argument-parser's own usage errors
// would exit 64; scripts expect one code for "bad input").
do {
    var command = try IngotCommand.parseAsRoot()
    try command.run()
} catch {
    if IngotCommand.exitCode(for: error) == .validationFailure {
        FileHandle.standardError.write(Data((IngotCommand.fullMessage(for: error) + "\n").utf8))
        exit(2)
    }
    IngotCommand.exit(withError: error)
}
