import Testing
import IngotCore
@testable import IngotFormats
import IngotTestSupport

/// safetensors ⇄ sharded safetensors ⇄ HDF5 round trips keep every tensor's bytes and the metadata.
struct ConversionRoundTripTests {
    let model = fixture("tiny-moe-austen")

    func convert(_ src: String, _ dst: String, _ dtype: DType? = nil, shard: Int = 5_000_000_000) throws {
        let s = try Checkpoint.open(src)
        var w = CheckpointWriter(destination: dst)
        w.metadata = s.metadata
        w.maxShardSize = shard
        if FileSystem.isDirectory(src) { w.companionsFrom = src }
        try ConversionJob(source: s, target: dtype).run(into: w)
    }

    @Test func bytesIdenticalThroughShardsAndHDF5() throws {
        let d = TempDir()
        let original = try Checkpoint.open(model)
        let digests = try tensorDigests(original)
        try convert(model, d.file("sharded"), shard: 3_000_000)
        let sharded = try Checkpoint.open(d.file("sharded"))
        #expect(sharded is ShardedSafetensors)
        #expect((sharded as! ShardedSafetensors).shards.count == 4)
        #expect(try tensorDigests(sharded) == digests)
        #expect(FileSystem.exists(d.file("sharded/config.json")) && FileSystem.exists(d.file("sharded/tokenizer.json")))
        let index = try JSON.parse(FileSystem.read(d.file("sharded/model.safetensors.index.json")))
        #expect(index["metadata"]?["total_size"]?.intValue == original.totalBytes)
        #expect(index["weight_map"]?.objectValue?.map(\.key) == original.tensors.map(\.name).sorted())

        try convert(d.file("sharded"), d.file("m.h5"))
        let h5 = try Checkpoint.open(d.file("m.h5"))
        #expect(try tensorDigests(h5) == digests)
        #expect(h5.metadata.map(\.key) == original.metadata.map(\.key))
        #expect(h5.tensors.allSatisfy { $0.fileOffset != nil }, "contiguous datasets are read zero-copy")

        try convert(d.file("m.h5"), d.file("back.safetensors"))
        let back = try Checkpoint.open(d.file("back.safetensors"))
        #expect(try tensorDigests(back) == digests)
        #expect(back.metadata.first?.value == "pt")
    }

    @Test func dtypeConversionValues() throws {
        let d = TempDir()
        try convert(model, d.file("f32.safetensors"), .f32)
        try convert(d.file("f32.safetensors"), d.file("f16.h5"), .f16)
        let orig = try Checkpoint.open(model), f32 = try Checkpoint.open(d.file("f32.safetensors"))
        let f16 = try Checkpoint.open(d.file("f16.h5"))
        for t in orig.tensors.prefix(8) {
            let a = try orig.tensor(named: t.name).floats(), b = try f32.tensor(named: t.name).floats()
            #expect(a == b, "bf16 → f32 is exact")
            let c = try f16.tensor(named: t.name)
            #expect(c.dtype == .f16)
            let expected = a.map { HalfFloat.f32ToF16($0) }
            #expect(Array(c.bytes.bindMemory(to: UInt16.self)) == expected)
        }
        // back to bf16: bf16 → f32 → f16 → bf16 equals the direct roundings
        try convert(d.file("f16.h5"), d.file("bf16.safetensors"), .bf16)
        let bf = try Checkpoint.open(d.file("bf16.safetensors"))
        let t = orig.tensors[3].name
        let viaF16 = try f16.tensor(named: t).floats().map { HalfFloat.f32ToBF16($0) }
        #expect(Array(try bf.tensor(named: t).bytes.bindMemory(to: UInt16.self)) == viaF16)
    }

    @Test func fusedExpertLayoutConverts() throws {
        let d = TempDir()
        try convert(fixture("tiny-moe-austen-fused"), d.file("x.h5"))
        let a = try Checkpoint.open(fixture("tiny-moe-austen-fused")), b = try Checkpoint.open(d.file("x.h5"))
        #expect(try tensorDigests(a) == tensorDigests(b))
        #expect(b.info("model.layers.0.mlp.experts.gate_up_proj")?.shape == [8, 512, 192])
    }
}

/// Crash safety: a failed write leaves nothing under the destination.
struct AtomicWriteTests {
    @Test func incompleteWriterLeavesNothing() throws {
        let d = TempDir()
        let e = try SafetensorsWriter.Entry(name: "a", dtype: .f32, shape: [4])
        do {
            let w = try SafetensorsWriter(path: d.file("x.safetensors"), entries: [e])
            try [Float](repeating: 1, count: 2).withUnsafeBytes { try w.append($0) }
            try w.commit()
            Issue.record("commit of an incomplete file succeeded")
        } catch let err as SafetensorsWriterError {
            #expect(err == .incomplete(path: d.file("x.safetensors"), missing: "a"))
        }
        #expect(d.entries.isEmpty, "left behind: \(d.entries)")
    }

    @Test func failureInsideProducerLeavesNoDirectory() throws {
        struct Boom: Error {}
        let d = TempDir()
        let src = try Checkpoint.open(fixture("tiny-moe-austen"))
        let entries = try src.tensors.map { try SafetensorsWriter.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        var w = CheckpointWriter(destination: d.file("out"))
        w.maxShardSize = 1_000_000
        #expect(throws: Boom.self) {
            try w.write(entries) { i, sink in
                if i == 40 { throw Boom() }
                try sink(try src.tensor(named: entries[i].name).bytes)
            }
        }
        #expect(d.entries.isEmpty, "left behind: \(d.entries)")
    }

    @Test func refusesExistingDestination() throws {
        let d = TempDir()
        writeBytes([1], to: d.file("x.safetensors"))
        #expect(throws: OutputError.destinationExists(d.file("x.safetensors"))) {
            _ = try SafetensorsWriter(path: d.file("x.safetensors"), entries: [])
        }
    }
}
