import Foundation
import Testing
import IngotCore
@testable import IngotFormats
import IngotTestSupport

/// The `.ingot` container: lossless round trips, determinism, and rejection of every malformed input.
struct NativeFormatTests {
    func pack(_ src: String, _ dst: String, threads: Int = 0, level: Int32? = 3, chunk: Int = 4 << 20, shard: Int? = nil) throws {
        var job = PackJob(source: try Checkpoint.open(src), destination: dst)
        job.options.level = level
        job.options.threads = threads
        job.options.chunkSize = chunk
        job.maxShardSize = shard
        if FileSystem.isDirectory(src) { job.companionsFrom = src }
        try job.run()
    }

    @Test func roundTripIsByteIdenticalAndKeepsCompanions() throws {
        let d = TempDir()
        let model = fixture("tiny-moe-austen")
        try pack(model, d.file("m.ingot"), chunk: 64 << 10)
        let f = try IngotFile(path: d.file("m.ingot"))
        let orig = try Checkpoint.open(model)
        #expect(try tensorDigests(f) == tensorDigests(orig))
        #expect(f.tensors.map(\.name) == orig.tensors.map(\.name), "file order kept")
        #expect(f.entries.contains { $0.chunks.count > 1 }, "multi-chunk tensors exercised")
        #expect(f.entries.allSatisfy { $0.chunks.allSatisfy { $0.codec == .byteplane } })
        #expect(try f.fileContents("config.json") == FileSystem.read(model + "/config.json"))
        #expect(f.metadata.first?.value == "pt")
        try f.verifyAll()
        // unpack to a directory: safetensors + companions, identical bytes
        var w = CheckpointWriter(destination: d.file("out"))
        w.extraFiles = try f.storedCompanionFiles()
        w.metadata = f.metadata
        try ConversionJob(source: f, target: nil).run(into: w)
        #expect(try tensorDigests(Checkpoint.open(d.file("out"))) == tensorDigests(orig))
        #expect(try FileSystem.read(d.file("out/tokenizer.json")) == FileSystem.read(model + "/tokenizer.json"))
    }

    @Test func outputIsIndependentOfThreadCount() throws {
        let d = TempDir()
        try pack(fixture("tiny-moe-austen"), d.file("a.ingot"), threads: 1, chunk: 64 << 10)
        try pack(fixture("tiny-moe-austen"), d.file("b.ingot"), threads: 0, chunk: 64 << 10)
        try pack(fixture("tiny-moe-austen"), d.file("c.ingot"), threads: 0, chunk: 64 << 10)
        let a = try FileSystem.read(d.file("a.ingot"))
        #expect(a == (try FileSystem.read(d.file("b.ingot"))))
        #expect(a == (try FileSystem.read(d.file("c.ingot"))))
    }

    @Test func rawChunksAreMappedInPlace() throws {
        let d = TempDir()
        try pack(fixture("tiny-moe-austen"), d.file("raw.ingot"), level: nil)
        let f = try IngotFile(path: d.file("raw.ingot"))
        let v = try f.tensor(named: "model.embed_tokens.weight")
        #expect(v.owner === f.file, "zero-copy view of the mapping")
        #expect((v.bytes.baseAddress! - f.file.bytes.baseAddress!) % f.alignment == 0)
        #expect(try tensorDigests(f) == tensorDigests(Checkpoint.open(fixture("tiny-moe-austen"))))
    }

    @Test func shardedSetReadsAsOne() throws {
        let d = TempDir()
        try pack(fixture("tiny-moe-austen"), d.file("m.ingot"), shard: 4_000_000)
        #expect(d.entries.filter { $0.hasSuffix(".ingot") } == ["m-00001-of-00003.ingot", "m-00002-of-00003.ingot", "m-00003-of-00003.ingot"])
        let s = try Checkpoint.open(d.file("m.ingot"))
        #expect(s is IngotShardSet)
        #expect(try tensorDigests(s) == tensorDigests(Checkpoint.open(fixture("tiny-moe-austen"))))
        try (s as! IngotShardSet).verifyAll()
        try FileManager.default.removeItem(atPath: d.file("m-00002-of-00003.ingot"))
        #expect(throws: NativeError.missingShard(file: d.file("m.ingot"), shard: "m-00002-of-00003.ingot")) { _ = try Checkpoint.open(d.file("m.ingot")) }
    }

    @Test func quantizedTensorsAreFirstClass() throws {
        // A hand-made 4-bit group-affine tensor [2, 8], group 4, and an FP8 block-scaled one.
        let d = TempDir()
        let w = try IngotFileWriter(path: d.file("q.ingot"))
        let codes: [UInt8] = [0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE]  // row 0: 0..7, row 1: 8..15
        let q = QuantizationInfo(scheme: .intAffine, bits: 4, granularity: .group, groupSize: 4, scale: "w.scale",
                                 zeroPoint: "w.zero", originalDType: .bf16, originalShape: [2, 8])
        try codes.withUnsafeBytes { try w.addTensor(name: "w", dtype: .u4, shape: [2, 8], bytes: $0, quantization: q) }
        try [Float(0.5), 1, 2, 4].withUnsafeBytes { try w.addTensor(name: "w.scale", dtype: .f32, shape: [2, 2], bytes: $0) }
        try [UInt8(1), 2, 3, 4].withUnsafeBytes { try w.addTensor(name: "w.zero", dtype: .u8, shape: [2, 2], bytes: $0) }
        let f8 = QuantizationInfo(scheme: .fp8E4M3, bits: 8, granularity: .block, block: [1, 2], scale: "v.scale",
                                  originalDType: .bf16, originalShape: [1, 4])
        try [UInt8(0x38), 0x40, 0xB8, 0x7E].withUnsafeBytes { try w.addTensor(name: "v", dtype: .f8e4m3, shape: [1, 4], bytes: $0, quantization: f8) }
        try [Float(2), 0.5].withUnsafeBytes { try w.addTensor(name: "v.scale", dtype: .f32, shape: [1, 2], bytes: $0) }
        try w.commit()
        let r = try IngotFile(path: d.file("q.ingot"))
        let info = try #require(r.entry("w")?.quantization)
        #expect(info == q)
        let scales: [Float] = [0.5, 1, 2, 4], zeros: [Float] = [1, 2, 3, 4]
        let expected: [Float] = (0..<16).map { i in (Float(i) - zeros[i / 4]) * scales[i / 4] }
        #expect(try Dequantize.weights("w", info: info, in: r) == expected)
        let fp8Expected: [Float] = [2, 4, -0.5, 224]
        let fp8 = try Dequantize.weights("v", info: r.entry("v")!.quantization!, in: r)
        #expect(fp8 == fp8Expected)
    }
}
