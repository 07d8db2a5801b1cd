import Foundation
import IngotCore
import Testing

@Suite struct FileSystemReadTests {
    /// Scripts pass data through pipes (`<(…)`, `/dev/stdin`): a FIFO is read to the end, not mapped (size 0).
    @Test func readsAFIFOToTheEnd() throws {
        let path = NSTemporaryDirectory() + "ingot-fifo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let payload = Array((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let writer = Thread {
            let fd = open(path, O_WRONLY)
            payload.withUnsafeBytes { b in var off = 0; while off < b.count { off += max(0, write(fd, b.baseAddress! + off, b.count - off)) } }
            close(fd)
        }
        writer.start()
        #expect(try FileSystem.read(path, streams: true) == payload)
    }
}
