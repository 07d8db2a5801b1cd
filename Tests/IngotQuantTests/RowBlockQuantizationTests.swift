import Testing
import IngotCore
import IngotFormats
import IngotTestSupport
@testable import IngotQuant

/// `QuantizeJob` quantizes straight from the stored bytes in blocks of rows, several tensors at once
/// (`RowBlockQuantization`): its codes, scales, zero points and health must be those of decoding each whole tensor
/// and calling the quantizer, for every dtype, scheme, granularity and awkward value, whatever the thread count.
struct RowBlockQuantizationTests {
    /// Tensors held in memory.
    final class MemorySource: TensorSource, @unchecked Sendable {
        let path = "memory"
        var tensors: [TensorInfo] = []
        var metadata: [(key: String, value: String)] { [] }
        var buffers: [String: TensorBuffer] = [:]

        func add(_ name: String, _ dtype: DType, _ shape: [Int], _ values: [Float]) {
            let bytes: [UInt8]
            switch dtype {
            case .bf16: bytes = values.map { HalfFloat.f32ToBF16($0) }.withUnsafeBytes { Array($0) }
            case .f16: bytes = values.map { HalfFloat.f32ToF16($0) }.withUnsafeBytes { Array($0) }
            default: bytes = values.withUnsafeBytes { Array($0) }
            }
            buffers[name] = bytes.withUnsafeBytes { TensorBuffer(copying: $0) }
            tensors.append(TensorInfo(name: name, dtype: dtype, shape: shape, byteCount: bytes.count, file: path, fileOffset: nil))
        }

        func tensor(named name: String) throws -> TensorView {
            guard let t = tensors.first(where: { $0.name == name }), let b = buffers[name] else {
                throw SourceError.noSuchTensor(name: name, path: path)
            }
            return TensorView(name: name, dtype: t.dtype, shape: t.shape, bytes: UnsafeRawBufferPointer(rebasing: b.storage[0..<t.byteCount]), owner: b)
        }
    }

    /// Weights with every awkward value: signed zeros, all-zero rows, denormals, NaN, infinities, large values.
    static func values(_ n: Int, seed: UInt64, specials: Bool) -> [Float] {
        var state = seed
        return (0..<n).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let x = Float(Int(state >> 40) - (1 << 23)) / Float(1 << 23) * 0.08
            guard specials else { return x }
            switch i % 997 {
            case 5: return -0.0
            case 6: return 0.0
            case 17: return 3e-41
            case 400: return 600
            case 801 where i > 5000: return .nan
            case 802 where i > 9000: return -.infinity
            default: return i >= 200 && i < 400 ? 0 : x
            }
        }
    }

    static func source() -> MemorySource {
        let s = MemorySource()
        s.add("model.layers.0.self_attn.q_proj.weight", .bf16, [37, 200], values(37 * 200, seed: 1, specials: true))
        s.add("model.layers.0.input_layernorm.weight", .bf16, [200], values(200, seed: 2, specials: false))
        s.add("model.layers.0.mlp.up_proj.weight", .f16, [130, 96], values(130 * 96, seed: 3, specials: true))
        // 2 blocks of rows (65536 / 256), the second partial
        s.add("model.layers.0.mlp.down_proj.weight", .f32, [300, 256], values(300 * 256, seed: 4, specials: true))
        s.add("model.layers.0.mlp.gate_proj.weight", .bf16, [257, 130], values(257 * 130, seed: 5, specials: false))
        return s
    }

    static let settings: [QuantizationPlan.Settings] = {
        func s(_ scheme: QuantScheme, group: Int? = nil, symmetric: Bool = false, convention: IntQuantizer.Convention = .compressedTensors,
               fp8: QuantizationInfo.Granularity = .channel) -> QuantizationPlan.Settings {
            var x = QuantizationPlan.Settings(scheme: scheme)
            x.groupSize = group; x.symmetric = symmetric; x.convention = convention; x.fp8Granularity = fp8
            return x
        }
        return [s(.rtnInt4, group: 32), s(.rtnInt4, group: 128), s(.rtnInt4, group: 64, symmetric: true), s(.rtnInt4),
                s(.rtnInt4, group: 64, convention: .autoawq), s(.rtnInt8, group: 64), s(.fp8E4M3), s(.fp8E5M2),
                s(.fp8E4M3, fp8: .block), s(.fp8E4M3, fp8: .tensor)]
    }()

    @Test(arguments: settings)
    func blocksEqualWholeTensorQuantization(settings s: QuantizationPlan.Settings) throws {
        let d = TempDir()
        let src = Self.source()
        var plan = QuantizationPlan(defaults: s)
        plan.activationScales["model.layers.0.mlp.up_proj.weight"] = 0.25
        var outputs: [[UInt8]] = []
        var records: [[ExportRecord]] = []
        for threads in [1, 2, 3] {
            let path = d.file("q\(threads).ingot")
            records.append(try Parallelism.withWorkers(threads) { try QuantizeJob(source: src, modelDirectory: nil, plan: plan, destination: path).run() })
            outputs.append(try FileSystem.read(path))
        }
        #expect(outputs[0] == outputs[1] && outputs[0] == outputs[2], "bytes depend on the thread count")
        let file = try IngotFile(path: d.file("q1.ingot"))
        try file.verifyAll()
        #expect(file.tensors.contains { $0.name == "model.layers.0.mlp.up_proj.input_scale" })
        for t in src.tensors where plan.settings(for: t.name, shape: t.shape) != nil {
            let values = try src.tensor(named: t.name).floats()
            let (rows, cols) = (t.shape[0], t.shape[1])
            let want = try values.withUnsafeBufferPointer { try QuantizeJob.quantize($0, rows: rows, columns: cols, dtype: t.dtype, settings: s) }
            let info = try #require(file.entries.first { $0.name == t.name }?.quantization)
            let got = try QuantizedWeight.load(t.name, info: info, from: file)
            #expect(got.codes == want.codes, "codes of \(t.name)")
            #expect(got.scales == want.scales, "scales of \(t.name)")
            #expect(got.zeros == want.zeros, "zero points of \(t.name)")
            let health = values.withUnsafeBufferPointer {
                WeightHealth.scan($0, rows: rows, columns: cols, groupSize: s.groupSize, fp8Max: s.scheme.fp8Format?.maxValue)
            }
            let record = try #require(records[0].first { $0.name == t.name })
            #expect(record.health == (health.isClean ? nil : health), "health of \(t.name)")
        }
    }

    @Test func blockBoundariesDoNotChangeTheHealthReport() throws {
        // The first non-finite value sits in the second block of rows; its index is the tensor's, not the block's.
        let rows = 600, cols = 256
        var w = Self.values(rows * cols, seed: 9, specials: false)
        w[520 * cols + 7] = .nan
        let src = MemorySource()
        src.add("model.layers.0.mlp.down_proj.weight", .f32, [rows, cols], w)
        let d = TempDir()
        let r = try QuantizeJob(source: src, modelDirectory: nil, plan: QuantizationPlan(defaults: .init(scheme: .rtnInt4)),
                                destination: d.file("q.ingot")).run()
        #expect(r.first?.health?.firstNonFinite == 520 * cols + 7)
        #expect(r.first?.health?.nan == 1)
    }
}
