import Testing
import IngotCore
import IngotFormats
@testable import IngotQuant
import IngotTestSupport

/// Reading the peers' quantized checkpoints back gives the weights their own decoders give.
struct DecoderTests {
    static let llmcRuns = ["tiny-llama-w4a16-asym", "tiny-llama-w4a16", "tiny-llama-fp8-dynamic", "tiny-llama-fp8-block",
                           "tiny-llama-awq-w4a16-asym", "tiny-mixtral-w4a16-asym", "tiny-mixtral-w4a16",
                           "tiny-mixtral-fp8-dynamic", "tiny-mixtral-fp8-block", "tiny-llama-mxfp4a16",
                           "tiny-llama-nvfp4a16", "tiny-llama-nvfp4"]

    /// compressed-tensors' decoder returns bf16 (the scale dtype): compare after the same rounding.
    @Test(arguments: llmcRuns)
    func llmCompressorOutputs(run: String) throws {
        let src = try DequantizedSource(Checkpoint.open(fixture("peers/llmc/\(run)")))
        let reference = try Checkpoint.open(fixture("peers/llmc/\(run)/dequantized.safetensors"))
        #expect(reference.tensors.count > 0)
        for t in reference.tensors {
            #expect(src.isQuantized(t.name), "\(t.name) not recognised as quantized")
            let ours = try src.tensor(named: t.name).floats().map { HalfFloat.bf16ToF32(HalfFloat.f32ToBF16($0)) }
            let theirs = try reference.tensor(named: t.name).floats()
            #expect(ours == theirs, "\(run): \(t.name)")
        }
    }

    /// AutoAWQ's `dequantize_gemm` returns fp16: compare after fp16 rounding.
    @Test(arguments: ["tiny-llama-gemm-g32-rtn", "tiny-llama-gemm-g32-awq-noclip"])
    func autoAWQOutputs(run: String) throws {
        let src = try DequantizedSource(Checkpoint.open(fixture("peers/autoawq/\(run)")))
        let reference = try Checkpoint.open(fixture("peers/autoawq/\(run)/dequantized.safetensors"))
        for t in reference.tensors {
            let ours = try src.tensor(named: t.name).floats().map { HalfFloat.f16ToF32(HalfFloat.f32ToF16($0)) }
            #expect(ours == (try reference.tensor(named: t.name).floats()), "\(run): \(t.name)")
        }
    }

    /// Our DeepSeek-style FP8 export decodes to the quantizer's own reference dequantization.
    @Test func deepseekFP8RoundTrip() throws {
        let d = TempDir()
        let modelDir = fixture("peers/models/tiny-mixtral")
        try ExportJob(source: Checkpoint.open(modelDir), modelDirectory: modelDir, format: .fp8,
                      plan: QuantizationPlan(defaults: .init(scheme: .fp8E4M3)), destination: d.file("out")).run()
        let src = try DequantizedSource(Checkpoint.open(d.file("out")))
        let orig = try Checkpoint.open(modelDir)
        let name = "model.layers.0.block_sparse_moe.experts.1.w2.weight"
        let w = try orig.tensor(named: name).floats()
        let q = w.withUnsafeBufferPointer { FP8Quantizer(granularity: .block).quantize($0, rows: 64, columns: 96, precision: .f32) }
        #expect(try src.tensor(named: name).floats() == q.dequantized())
        let cfg = try JSON.parse(FileSystem.read(d.file("out/config.json")))
        #expect(cfg["quantization_config"]?["weight_block_size"]?.arrayValue?.count == 2)
        // relative error of FP8 E4M3 block quantization is about 2-3%
        let dq = q.dequantized()
        let err = zip(w, dq).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
        let norm = w.reduce(0.0) { $0 + Double($1 * $1) }
        #expect((err / norm).squareRoot() < 0.04)
    }
}
