import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotForward
import IngotTestSupport
@testable import IngotVerify

/// Gates pass and fail on the right side of their limits; weight errors compare what the quantization changed.
@Suite struct GatesTests {
    func result(nllA: Double, nllB: Double, klds: [Double], same: Int) -> VerifyResult {
        var r = VerifyResult()
        r.nllOriginal = nllA; r.nllQuantized = nllB; r.kld = klds; r.deltaP = klds.map { _ in 0 }; r.sameTop = same
        return r
    }

    @Test func limitsAreInclusiveAndNaNFails() {
        let r = result(nllA: 4 * log(10.0), nllB: 4 * log(11.0), klds: [0.01, 0.03, 0.02, 0.02], same: 3)
        var g = Gates()
        g.maxPplDelta = 1.0; g.maxPplRatio = 1.05; g.maxKLD = 0.02; g.minTop1 = 0.75
        let out = g.check(r)
        #expect(out.map(\.gate) == ["max-ppl-delta", "max-ppl-ratio", "max-kld", "min-top1"])
        #expect(out.map(\.passed) == [abs(r.pplDelta - 1.0) < 1e-9 || r.pplDelta <= 1.0, false, true, true])
        #expect(abs(out[1].value - 1.1) < 1e-9)
        var nan = result(nllA: 1, nllB: .nan, klds: [0.1], same: 1)
        nan.nllQuantized = .nan
        var only = Gates()
        only.maxPplDelta = 100
        #expect(only.check(nan).map(\.passed) == [false])
        #expect(Gates().check(r).isEmpty, "unset gates are not checked")
    }

    @Test func weightErrorsCoverChangedWeightsOnly() throws {
        let d = TempDir()
        let w: [Float] = [1, 2, 3, 4], q: [Float] = [1, 2, 3, 5]
        for (name, values) in [("a", w), ("b", q)] {
            let entries = [try SafetensorsWriter.Entry(name: "m.x.weight", dtype: .f32, shape: [2, 2]),
                           try SafetensorsWriter.Entry(name: "m.y.weight", dtype: .f32, shape: [2, 2])]
            let writer = try SafetensorsWriter(path: d.file(name + ".safetensors"), entries: entries)
            try w.withUnsafeBytes { try writer.append($0) }
            try values.withUnsafeBytes { try writer.append($0) }
            try writer.commit()
        }
        let errors = try Verification.weightErrors(original: Checkpoint.open(d.file("a.safetensors")),
                                                   quantized: Checkpoint.open(d.file("b.safetensors")))
        #expect(errors.map(\.name) == ["m.y.weight"], "unchanged weights are left out")
        #expect(abs(errors[0].relL2 - (1.0 / 30.0).squareRoot()) < 1e-12)
    }
}
