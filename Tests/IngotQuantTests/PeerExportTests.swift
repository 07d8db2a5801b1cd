import Foundation
import Testing
import IngotCore
import IngotFormats
@testable import IngotQuant
import IngotTestSupport

/// Ingot's exports against the peers' own outputs on the same weights: byte for byte.
struct PeerExportTests {
    static let cases: [(model: String, run: String, scheme: QuantScheme, symmetric: Bool, fp8: QuantizationInfo.Granularity)] = [
        ("tiny-llama", "tiny-llama-w4a16-asym", .rtnInt4, false, .channel),
        ("tiny-llama", "tiny-llama-w4a16", .rtnInt4, true, .channel),
        ("tiny-mixtral", "tiny-mixtral-w4a16-asym", .rtnInt4, false, .channel),
        ("tiny-mixtral", "tiny-mixtral-w4a16", .rtnInt4, true, .channel),
        ("tiny-llama", "tiny-llama-fp8-dynamic", .fp8E4M3, true, .channel),
        ("tiny-llama", "tiny-llama-fp8-block", .fp8E4M3, true, .block),
        ("tiny-mixtral", "tiny-mixtral-fp8-dynamic", .fp8E4M3, true, .channel),
        ("tiny-mixtral", "tiny-mixtral-fp8-block", .fp8E4M3, true, .block),
        ("tiny-llama", "tiny-llama-mxfp4a16", .mxfp4, true, .channel),
        ("tiny-llama", "tiny-llama-nvfp4a16", .nvfp4a16, true, .channel),
    ]

    @Test(arguments: 0..<cases.count)
    func compressedTensorsMatchesLLMCompressor(index: Int) throws {
        let c = Self.cases[index]
        let d = TempDir()
        var settings = QuantizationPlan.Settings(scheme: c.scheme)
        settings.groupSize = c.scheme.groupSizeIsFixed ? c.scheme.defaultGroupSize : 32
        settings.symmetric = c.symmetric
        settings.fp8Granularity = c.fp8
        let modelDir = fixture("peers/models/\(c.model)")
        try ExportJob(source: Checkpoint.open(modelDir), modelDirectory: modelDir, format: .compressedTensors,
                      plan: QuantizationPlan(defaults: settings), destination: d.file("out")).run()
        let ours = try Checkpoint.open(d.file("out")), theirs = try Checkpoint.open(fixture("peers/llmc/\(c.run)"))
        #expect(Set(ours.tensors.map(\.name)) == Set(theirs.tensors.map(\.name)))
        for t in theirs.tensors {
            let a = try theirs.tensor(named: t.name)
            guard let b = try? ours.tensor(named: t.name) else { Issue.record("missing \(t.name)"); continue }
            #expect(a.dtype == b.dtype && a.shape == b.shape, "\(t.name): \(b.dtype)\(b.shape) vs \(a.dtype)\(a.shape)")
            let same = a.withBytes { x in b.withBytes { y in x.elementsEqual(y) } }
            #expect(same, "\(c.run): \(t.name) differs")
        }
        let q1 = try JSON.parse(FileSystem.read(d.file("out/config.json")))["quantization_config"]
        let q2 = try JSON.parse(FileSystem.read(fixture("peers/llmc/\(c.run)/config.json")))["quantization_config"]
        #expect(canonicalJSON(q1) == canonicalJSON(q2), "quantization_config differs")
    }

    @Test func autoAWQGemmMatchesAutoAWQ() throws {
        let d = TempDir()
        var s = QuantizationPlan.Settings(scheme: .rtnInt4)
        s.groupSize = 32
        s.convention = .autoawq
        let modelDir = fixture("peers/models/tiny-llama")
        try ExportJob(source: Checkpoint.open(modelDir), modelDirectory: modelDir, format: .autoawq,
                      plan: QuantizationPlan(defaults: s), destination: d.file("out")).run()
        let ours = try Checkpoint.open(d.file("out")), theirs = try Checkpoint.open(fixture("peers/autoawq/tiny-llama-gemm-g32-rtn"))
        #expect(Set(ours.tensors.map(\.name)) == Set(theirs.tensors.map(\.name)))
        for t in theirs.tensors {
            let a = try theirs.tensor(named: t.name), b = try ours.tensor(named: t.name)
            #expect(a.withBytes { x in b.withBytes { y in x.elementsEqual(y) } }, "\(t.name) differs")
        }
        let q1 = try JSON.parse(FileSystem.read(d.file("out/config.json")))["quantization_config"]
        let q2 = try JSON.parse(FileSystem.read(fixture("peers/autoawq/tiny-llama-gemm-g32-rtn/config.json")))["quantization_config"]
        #expect(canonicalJSON(q1) == canonicalJSON(q2))
    }
}
