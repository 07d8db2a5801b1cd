#if canImport(Glibc)
import Glibc
#endif
import IngotCLI

// A file-size limit (ulimit -f) must surface as a write error, not kill the process mid-write.
signal(SIGXFSZ, SIG_IGN)
IngotCommand.main()
