import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotForward
@testable import IngotQuant
import IngotTestSupport

/// gpt-oss's MXFP4 experts read as a source: dequantized exactly into transformers' layout.
struct MXFP4SourceTests {
    /// fixtures/families/tiny-gpt-oss-mxfp4 holds tiny-gpt-oss's (MXFP4-representable) experts as blocks and
    /// scales: the dequantized tensors equal the bf16 ones bit for bit, and the logits match transformers'.
    @Test func mxfp4ExpertsDequantizeExactly() throws {
        let q = try DequantizedSource(Checkpoint.open(fixture("families/tiny-gpt-oss-mxfp4")))
        let plain = try Checkpoint.open(fixture("families/tiny-gpt-oss"))
        var compared = 0
        for t in plain.tensors where t.name.hasSuffix("experts.gate_up_proj") || t.name.hasSuffix("experts.down_proj") {
            let info = try #require(q.info(t.name))
            #expect(info.shape == t.shape && info.dtype == .f32)
            #expect(try q.tensor(named: t.name).floats() == plain.tensor(named: t.name).floats(), "\(t.name)")
            compared += 1
        }
        #expect(compared == 6)
        #expect(!q.tensors.contains { $0.name.hasSuffix("_blocks") || $0.name.hasSuffix("_scales") })
    }

    @Test func mxfp4ModelMatchesTransformers() throws {
        let opened = try OpenedModel(path: fixture("families/tiny-gpt-oss-mxfp4"))
        let ref = try Checkpoint.open(fixture("families/tiny-gpt-oss/reference_logits.safetensors"))
        let ids = try ref.tensor(named: "input_ids").floats().map { Int($0) }
        let expected = try ref.tensor(named: "logits").floats()
        let got = try opened.model.logits(ids)
        var err = 0.0, norm = 0.0
        for i in expected.indices { err += Double(expected[i] - got[i]) * Double(expected[i] - got[i]); norm += Double(expected[i]) * Double(expected[i]) }
        let rel = (err / norm).squareRoot()
        print("logits tiny-gpt-oss-mxfp4: relative L2 \(rel)")
        #expect(rel <= 1e-5)
    }

    /// Blocks whose scales do not match their shape are refused by name.
    @Test func mismatchedScalesAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/ingot-mxfp4-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // blocks [1, 2, 1, 16] with scales [1, 3, 1]: a hand-written safetensors file
        let header = #"{"x.experts.down_proj_blocks":{"dtype":"U8","shape":[1,2,1,16],"data_offsets":[0,32]},"#
            + #""x.experts.down_proj_scales":{"dtype":"U8","shape":[1,3,1],"data_offsets":[32,35]}}"#
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
        bytes += [UInt8](repeating: 0x21, count: 32) + [127, 127, 127]
        FileManager.default.createFile(atPath: dir + "/model.safetensors", contents: Data(bytes))
        #expect(throws: DequantizedSource.Failure.self) { _ = try DequantizedSource(Checkpoint.open(dir + "/model.safetensors")) }
    }
}
