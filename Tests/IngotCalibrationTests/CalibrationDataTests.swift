import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotTestSupport
@testable import IngotCalibration

/// Calibration inputs: token files used as given, streams cut into seeded blocks, bad inputs refused by name.
@Suite struct CalibrationDataTests {
    @Test func sequencesAreUsedAsGivenAndTruncated() throws {
        let d = TempDir()
        writeBytes(Array("[[1,2,3,4],[5,6,7],[8,9,10,11]]".utf8), to: d.file("t.json"))
        let c = try CalibrationData.load(path: d.file("t.json"), tokenizer: nil, samples: 2, seqLen: 3, seed: 1)
        #expect(c.sequences == [[1, 2, 3], [5, 6, 7]])
        #expect(c.tokenCount == 6)
        #expect(c.sourceSHA256 == SHA256.hex(Array("[[1,2,3,4],[5,6,7],[8,9,10,11]]".utf8)))
    }

    @Test func aFlatStreamIsCutIntoSeededBlocks() throws {
        let d = TempDir()
        writeBytes(Array(("[" + (0..<40).map(String.init).joined(separator: ",") + "]").utf8), to: d.file("t.json"))
        let a = try CalibrationData.load(path: d.file("t.json"), tokenizer: nil, samples: 3, seqLen: 8, seed: 7)
        let b = try CalibrationData.load(path: d.file("t.json"), tokenizer: nil, samples: 3, seqLen: 8, seed: 7)
        #expect(a.sequences == b.sequences, "the same seed picks the same blocks")
        #expect(a.sequences.count == 3 && a.sequences.allSatisfy { $0.count == 8 && $0[0] % 8 == 0 && $0 == Array($0[0]..<($0[0] + 8)) })
        #expect(Set(a.sequences.map { $0[0] }).count == 3, "blocks are distinct")
    }

    @Test func badInputsAreRefusedByName() throws {
        let d = TempDir()
        writeBytes(Array("[1, 2, \"x\"]".utf8), to: d.file("bad.json"))
        writeBytes(Array("{\"txt\": 1}\n".utf8), to: d.file("bad.jsonl"))
        writeBytes(Array("[1,2,3]".utf8), to: d.file("short.json"))
        writeBytes(Array("some text".utf8), to: d.file("plain.txt"))
        #expect(throws: CalibrationData.Failure.self) { try CalibrationData.load(path: d.file("bad.json"), tokenizer: nil, samples: 1, seqLen: 2, seed: 0) }
        #expect(throws: CalibrationData.Failure.self) { try CalibrationData.load(path: d.file("bad.jsonl"), tokenizer: nil, samples: 1, seqLen: 2, seed: 0) }
        #expect(throws: CalibrationData.Failure.tooShort(path: d.file("short.json"), tokens: 3, seqLen: 8)) {
            try CalibrationData.load(path: d.file("short.json"), tokenizer: nil, samples: 1, seqLen: 8, seed: 0)
        }
        #expect(throws: CalibrationData.Failure.needsTokenizer(d.file("plain.txt"))) {
            try CalibrationData.load(path: d.file("plain.txt"), tokenizer: nil, samples: 1, seqLen: 2, seed: 0)
        }
    }

    @Test func activationStatsDoNotDependOnRowOrder() {
        let x: [Float] = (0..<(16 * 5)).map { Float(sin(Double($0))) * 3 }
        var a = ActivationStats(width: 5), b = ActivationStats(width: 5)
        a.add(x, rows: 16)
        b.add(Array(x[40...]), rows: 8)
        b.add(Array(x[..<40]), rows: 8)
        #expect(a == b)
        #expect(a.absmax == (0..<5).map { c in (0..<16).map { abs(x[$0 * 5 + c]) }.max()! })
    }
}
