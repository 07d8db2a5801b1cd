import Testing
import IngotCore
@testable import IngotFormats
import IngotTestSupport

/// HDF5 files written by h5py (scripts/make_h5_fixtures.py) and malformed inputs.
struct HDF5Tests {
    @Test func readsH5pyStateDictWithChunkedGzipAndBF16() throws {
        let f = try Checkpoint.open(fixture("h5/h5py_state_dict.h5"))
        let names = f.tensors.map(\.name)
        #expect(names.contains("model.embed.weight"))
        let gz = try f.tensor(named: "model.layers.0.gz.weight")
        #expect(gz.dtype == .f32 && gz.shape == [16, 8])
        #expect(try gz.floats() == (0..<128).map { Float($0) * 0.25 - 3 })
        let bf = try f.tensor(named: "model.layers.0.bf.weight")
        #expect(bf.dtype == .bf16)
        #expect(try bf.floats() == [1, -2, 0.5, 3.140625])
        let h = try f.tensor(named: "model.layers.0.half.weight")
        let hv = try h.floats()
        #expect(h.dtype == .f16 && hv == [0.5, -1.5, 65504, 0])
        let ints = try f.tensor(named: "model.ids")
        #expect(ints.dtype == .i64 && Array(ints.bytes.bindMemory(to: Int64.self)) == [1, 2, 3])
        #expect(f.metadata.contains { $0.key == "format" && $0.value == "pt" })
    }

    @Test func readsKerasWeightsLayout() throws {
        let f = try Checkpoint.open(fixture("h5/keras_model.weights.h5"))
        #expect((f as? HDF5File)?.isKeras == true)
        #expect(f.tensors.map(\.name).contains("layers/dense/vars/0"))
        let k = try f.tensor(named: "layers/dense/vars/0")
        #expect(k.shape == [4, 3])
        #expect(try k.floats() == (0..<12).map { Float($0) })
    }

    @Test func notHDF5IsRejectedBeforeLibhdf5() throws {
        let d = TempDir()
        writeBytes(Array("definitely not hdf5, just text that goes on for a while".utf8), to: d.file("x.h5"))
        #expect(throws: HDF5Error.notHDF5(file: d.file("x.h5"))) { _ = try Checkpoint.open(d.file("x.h5")) }
        // Signature present but the rest is garbage: libhdf5 fails, we report it.
        writeBytes([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0xAB, count: 600), to: d.file("y.h5"))
        #expect(throws: HDF5Error.cannotOpen(file: d.file("y.h5"))) { _ = try Checkpoint.open(d.file("y.h5")) }
    }

    @Test func writerRoundTripsEveryStorableDType() throws {
        let d = TempDir()
        let w = try HDF5Writer(path: d.file("all.h5"), metadata: [("a", "b")])
        let dtypes: [DType] = [.f32, .f64, .f16, .bf16, .u8, .i8, .i16, .u16, .i32, .u32, .i64, .u64, .bool, .f8e4m3, .f8e5m2]
        for (i, dt) in dtypes.enumerated() {
            let bytes = (0..<(3 * dt.byteWidth!)).map { UInt8(truncatingIfNeeded: $0 * 37 + i) }
            try bytes.withUnsafeBytes { try w.add(name: "t.\(dt.rawValue.lowercased())", dtype: dt, shape: [3], bytes: $0) }
        }
        try [Float(2)].withUnsafeBytes { try w.add(name: "scalar", dtype: .f32, shape: [], bytes: $0) }
        try w.commit()
        let r = try Checkpoint.open(d.file("all.h5"))
        for (i, dt) in dtypes.enumerated() {
            let t = try r.tensor(named: "t.\(dt.rawValue.lowercased())")
            #expect(t.dtype == dt)
            #expect(Array(t.bytes) == (0..<(3 * dt.byteWidth!)).map { UInt8(truncatingIfNeeded: $0 * 37 + i) })
        }
        #expect(r.info("scalar")?.shape == [])
        #expect(r.metadata.map(\.key) == ["a"])
    }
}
