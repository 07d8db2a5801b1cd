import Foundation
import Testing
import IngotCore
import IngotFormats
@testable import IngotQuant
import IngotTestSupport

/// Same input, same bytes: every worker count (1, 3, all cores) gives identical files for every scheme.
@Suite struct DeterminismTests {
    static let schemes: [(QuantScheme, Bool, QuantizationInfo.Granularity)] = [
        (.rtnInt4, false, .channel), (.rtnInt4, true, .channel), (.rtnInt8, false, .channel),
        (.fp8E4M3, true, .channel), (.fp8E4M3, true, .block), (.fp8E5M2, true, .tensor),
    ]

    func run(_ k: Int, workers: Int, into d: TempDir, tag: String) throws -> [UInt8] {
        let (scheme, sym, gran) = Self.schemes[k]
        var s = QuantizationPlan.Settings(scheme: scheme)
        s.groupSize = 64
        s.symmetric = sym
        s.fp8Granularity = gran
        let model = fixture("tiny-moe-austen")
        try Parallelism.withWorkers(workers) {
            try QuantizeJob(source: try Checkpoint.open(model), modelDirectory: model, plan: QuantizationPlan(defaults: s),
                            destination: d.file("\(tag).ingot")).run()
            try ExportJob(source: Checkpoint.open(model), modelDirectory: model, format: .compressedTensors,
                          plan: QuantizationPlan(defaults: s), destination: d.file("\(tag)-ct")).run()
        }
        return try FileSystem.read(d.file("\(tag).ingot")) + FileSystem.read(d.file("\(tag)-ct/model.safetensors"))
    }

    @Test(arguments: 0..<schemes.count)
    func identicalAcrossRunsAndThreadCounts(k: Int) throws {
        let d = TempDir()
        let a = try run(k, workers: 1, into: d, tag: "a")
        let b = try run(k, workers: 3, into: d, tag: "b")
        let c = try run(k, workers: 0, into: d, tag: "c")
        #expect(a == b, "1 vs 3 workers differ for scheme \(k)")
        #expect(a == c, "1 worker vs all cores differ for scheme \(k)")
    }
}
