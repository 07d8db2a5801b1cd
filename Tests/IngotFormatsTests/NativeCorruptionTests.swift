import Foundation
import Testing
import IngotCore
@testable import IngotFormats
import IngotTestSupport

/// Every byte of a small `.ingot` file is flipped, one at a time: each flip must be reported by `verifyAll`
/// (padding is verified to be zero), and reading never crashes. Plus crafted bad files, each with its error.
struct NativeCorruptionTests {
    /// A small file with raw, zstd and byte-plane chunks, a companion file and a quantized tensor.
    static func smallFile() throws -> [UInt8] {
        let d = TempDir()
        var o = IngotFileWriter.Options()
        o.alignment = 64
        o.chunkSize = 512
        let w = try IngotFileWriter(path: d.file("s.ingot"), options: o)
        let bf16: [UInt16] = (0..<400).map { HalfFloat.f32ToBF16(sin(Float($0)) * 0.02) }
        try bf16.withUnsafeBytes { try w.addTensor(name: "a.weight", dtype: .bf16, shape: [20, 20], bytes: $0) }
        let ints: [Int32] = (0..<100).map { Int32($0 % 7) }
        try ints.withUnsafeBytes { try w.addTensor(name: "b.ids", dtype: .i32, shape: [100], bytes: $0) }
        let noise: [UInt8] = (0..<96).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
        try noise.withUnsafeBytes { try w.addTensor(name: "c.raw", dtype: .u8, shape: [96], bytes: $0) }
        try w.addFile(name: "config.json", bytes: Array(#"{"model_type":"llama","hidden_size":64}"#.utf8))
        w.metadata = .object([("note", .string("corruption sweep"))])
        try w.commit()
        return try FileSystem.read(d.file("s.ingot"))
    }

    @Test func fixtureCoversEveryCodec() throws {
        let f = try IngotFile(file: MappedFile(contents: Self.smallFile(), path: "s.ingot"))
        let codecs = Set(f.entries.flatMap { $0.chunks.map(\.codec) })
        #expect(codecs == [.raw, .zstd, .byteplane])
    }

    @Test func everySingleByteFlipIsDetected() throws {
        let original = try Self.smallFile()
        let reference = try IngotFile(file: MappedFile(contents: original, path: "s.ingot"))
        let digests = try tensorDigests(reference)
        var undetected: [Int] = []
        for i in original.indices {
            var bytes = original
            bytes[i] ^= UInt8(1 << (i % 8))  // a one-bit flip, position varying with the offset
            do {
                let f = try IngotFile(file: MappedFile(contents: bytes, path: "s.ingot"))
                // Reading must either fail or give the original bytes; verifyAll must always fail.
                if let got = try? tensorDigests(f), got != digests { undetected.append(i); continue }
                try f.verifyAll()
                undetected.append(i)
            } catch is NativeError {
                continue
            } catch {
                Issue.record("byte \(i): unexpected error type \(error)")
            }
        }
        #expect(undetected.isEmpty, "flips not detected at offsets \(undetected.prefix(20)) of \(original.count)")
    }

    /// Rewrites the index with `edit` and re-seals the trailer so only the edited field is wrong.
    static func withIndex(_ bytes: [UInt8], _ edit: (inout String) -> Void) -> [UInt8] {
        let t = bytes.count - 64
        let off = Int(bytes[t + 8..<t + 16].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var text = String(decoding: bytes[off..<t], as: UTF8.self)
        edit(&text)
        let idx = Array(text.utf8)
        let trailer = NativeLayout.Trailer(indexOffset: UInt64(off), indexLength: UInt64(idx.count), indexHash: XXH64.hash(idx),
                                           fileLength: UInt64(off + idx.count + 64))
        return Array(bytes[0..<off]) + idx + trailer.encode()
    }

    func expectError(_ bytes: [UInt8], _ check: (NativeError) -> Bool) {
        do {
            let f = try IngotFile(file: MappedFile(contents: bytes, path: "s.ingot"))
            try f.verifyAll()
            Issue.record("accepted")
        } catch let e as NativeError { #expect(check(e), "\(e)") } catch { Issue.record("\(error)") }
    }

    @Test func truncatedFile() throws {
        let b = try Self.smallFile()
        expectError(Array(b[0..<100])) { if case .truncated = $0 { true } else { false } }
        expectError(Array(b[0..<(b.count - 10)])) { if case .truncatedEnd = $0 { true } else { false } }
    }

    @Test func wrongMagicAndVersion() throws {
        var b = try Self.smallFile()
        b[1] = UInt8(ascii: "X")
        expectError(b) { if case .badMagic(_, "header") = $0 { true } else { false } }
        var v = try Self.smallFile()
        v[8] = 2  // major version 2, re-sealed header
        let h = XXH64.hash(Array(v[0..<56]))
        withUnsafeBytes(of: h.littleEndian) { for k in 0..<8 { v[56 + k] = $0[k] } }
        expectError(v) { if case .unsupportedVersion(_, 2, 0) = $0 { true } else { false } }
    }

    @Test func indexOffsetsOutsideTheFile() throws {
        let b = try Self.smallFile()
        let t = b.count - 64
        var bad = Array(b[0..<t])
        let trailer = NativeLayout.Trailer(indexOffset: UInt64(b.count * 2), indexLength: 10, indexHash: 0, fileLength: UInt64(b.count))
        bad += trailer.encode()
        expectError(bad) { if case .indexOutOfFile = $0 { true } else { false } }
        let chunkPast = Self.withIndex(b) { $0 = $0.replacingOccurrences(of: #""offset":64,"#, with: #""offset":999999,"#) }
        expectError(chunkPast) { if case .chunkOutOfRange = $0 { true } else { false } }
    }

    @Test func decompressedSizeMismatch() throws {
        let b = try Self.smallFile()
        let f = try IngotFile(file: MappedFile(contents: b, path: "s.ingot"))
        let z = try #require(f.entries.first { $0.chunks.contains { $0.codec == .zstd } })
        let c = z.chunks.first { $0.codec == .zstd }!
        // Shrink the declared size of the zstd chunk (and the tensor) by 4 bytes: the frame disagrees.
        let edited = Self.withIndex(b) { text in
            text = text.replacingOccurrences(of: #""offset":\#(c.offset),"size":\#(c.rawSize),"#,
                                             with: #""offset":\#(c.offset),"size":\#(c.rawSize - 4),"#)
            text = text.replacingOccurrences(of: #""shape":[100],"size":400"#, with: #""shape":[99],"size":396"#)
        }
        expectError(edited) { if case .chunkDecode(_, "b.ids", _, let r) = $0 { r.contains("frame declares") } else { false } }
    }

    @Test func zstdBombIsRejectedFromTheIndexAlone() throws {
        let b = try Self.smallFile()
        let edited = Self.withIndex(b) { text in
            text = text.replacingOccurrences(of: #""shape":[100],"size":400"#, with: #""shape":[1073741824],"size":4294967296"#)
            text = text.replacingOccurrences(of: #""size":400,"#, with: #""size":4294967296,"#)
        }
        expectError(edited) { if case .chunkTooLarge(_, "b.ids", 0, 4_294_967_296, _) = $0 { true } else { false } }
    }

    @Test func duplicateNames() throws {
        let b = try Self.smallFile()
        let edited = Self.withIndex(b) { $0 = $0.replacingOccurrences(of: #""name":"c.raw""#, with: #""name":"a.weight""#) }
        expectError(edited) { if case .duplicateName(_, "a.weight") = $0 { true } else { false } }
    }
}
