import Foundation
import Testing
import IngotCore
import IngotFormats
@testable import IngotQuant

/// Same input, same bytes: repeated runs and serial vs parallel execution give identical files for every scheme.
@Suite(.serialized) struct DeterminismTests {
    static let schemes: [(QuantScheme, Bool, QuantizationInfo.Granularity)] = [
        (.rtnInt4, false, .channel), (.rtnInt4, true, .channel), (.rtnInt8, false, .channel),
        (.fp8E4M3, true, .channel), (.fp8E4M3, true, .block), (.fp8E5M2, true, .tensor),
    ]

    func run(_ k: Int, serial: Bool, into d: TempDir, tag: String) throws -> [UInt8] {
        let (scheme, sym, gran) = Self.schemes[k]
        var s = QuantizationPlan.Settings(scheme: scheme)
        s.groupSize = 64
        s.symmetric = sym
        s.fp8Granularity = gran
        Parallelism.serial = serial
        defer { Parallelism.serial = false }
        let model = fixture("tiny-moe-austen")
        var job = QuantizeJob(source: try Checkpoint.open(model), modelDirectory: model, plan: QuantizationPlan(defaults: s),
                              destination: d.file("\(tag).ingot"))
        job.options.threads = serial ? 1 : 0
        try job.run()
        try ExportJob(source: Checkpoint.open(model), modelDirectory: model, format: .compressedTensors,
                      plan: QuantizationPlan(defaults: s), destination: d.file("\(tag)-ct")).run()
        return try FileSystem.read(d.file("\(tag).ingot")) + FileSystem.read(d.file("\(tag)-ct/model.safetensors"))
    }

    @Test(arguments: 0..<schemes.count)
    func identicalAcrossRunsAndThreadCounts(k: Int) throws {
        let d = TempDir()
        let a = try run(k, serial: true, into: d, tag: "a")
        let b = try run(k, serial: false, into: d, tag: "b")
        let c = try run(k, serial: false, into: d, tag: "c")
        #expect(a == b, "serial vs parallel differ for scheme \(k)")
        #expect(b == c, "repeated runs differ for scheme \(k)")
    }
}
