import Foundation
import IngotCore
import IngotTestSupport
import Testing

/// `OutputFile` writes whole buffers in the background, bypassing the page cache where the filesystem allows
/// (`O_DIRECT`, padded last block then truncated): whatever the sizes and the filesystem, the committed file holds
/// exactly the bytes written, and an uncommitted one leaves nothing behind.
@Suite struct OutputFileTests {
    /// Directories on different filesystems where the machine has them: the temporary directory (a disk, direct
    /// I/O) and /dev/shm (tmpfs, buffered on kernels without tmpfs direct I/O).
    static var places: [String] { [NSTemporaryDirectory()] + (FileManager.default.fileExists(atPath: "/dev/shm") ? ["/dev/shm/"] : []) }

    @Test(arguments: [0, 1, 4095, 4096, 4097, 3 * 8192 + 17, 100_003])
    func committedFileHoldsExactlyTheBytesWritten(size: Int) throws {
        var g = TestRandom(seed: UInt64(size))
        let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        for place in Self.places {
            let dir = place + "ingot-test-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // An 8 KiB buffer, so the pieces cross many buffer swaps; piece sizes from 1 byte to several buffers.
            let f = try OutputFile(path: dir + "/out.bin", bufferSize: 8192)
            var i = 0, step = 1
            try bytes.withUnsafeBytes { b in
                while i < size {
                    let j = min(size, i + step)
                    try f.write(UnsafeRawBufferPointer(rebasing: b[i..<j]))
                    i = j
                    step = step < 20_000 ? step * 3 + 1 : 1
                }
            }
            #expect(f.offset == size)
            try f.commit()
            #expect(try FileSystem.read(dir + "/out.bin") == bytes, "size \(size) in \(place)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.bin"])
        }
    }

    @Test func droppedWithoutCommitLeavesNothing() throws {
        for place in Self.places {
            let dir = place + "ingot-test-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            do {
                let f = try OutputFile(path: dir + "/out.bin", bufferSize: 4096)
                try f.write([UInt8](repeating: 7, count: 50_000))  // several background writes in flight or done
            }
            FileHandle.standardError.write("CHECK\n".data(using: .utf8)!)
            let left = try FileManager.default.contentsOfDirectory(atPath: dir)
            #expect(left.isEmpty, "left behind in \(place): \(left)")
        }
    }
}
