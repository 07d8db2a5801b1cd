import Foundation
import Testing
import IngotTestSupport

/// `ingot bench suite` runs every row in a child process and reports it; the figures are not checked (speed belongs
/// in the benchmark's output), only that each row ran and measured something consistent.
struct BenchSuiteCLITests {
    @Test func everyRowRunsAndReportsItsFields() throws {
        let r = try ingot(["bench", "suite", fixture("tiny-moe-austen"), "--text", fixture("texts/persuasion-heldout.txt"),
                           "--eval-tokens", "300", "--ctx", "128", "--long-ctx", "256", "--moe-model", fixture("tiny-moe-austen"),
                           "--moe-ctx", "64", "--moe-tokens", "128", "--calib-samples", "2", "--calib-seq-len", "32", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["row"] as? String } == ["load", "convert", "pack", "decode", "unpack", "rtn-int4", "fp8-e4m3", "forward",
                                                      "forward-long", "forward-moe", "calibrate+awq"])
        for row in rows {
            #expect((row["seconds"] as? Double ?? 0) > 0, "\(row)")
            #expect((row["peak_rss_mb"] as? Double ?? 0) > 1, "\(row)")
            #expect(row["tool"] as? String == "ingot")
        }
        let pack = rows[2], decode = rows[3], forward = rows[7], long = rows[8], moe = rows[9]
        #expect((pack["bytes_out"] as? Int ?? .max) < (pack["bytes_in"] as? Int ?? 0))
        #expect(decode["bytes_out"] as? Int == pack["bytes_out"] as? Int && decode["bytes_in"] as? Int == pack["bytes_in"] as? Int, "\(decode)")
        #expect((forward["tokens"] as? Int ?? 0) >= 256 && (forward["tokens"] as? Int ?? 0) <= 300, "\(forward)")
        #expect(long["tokens"] as? Int == 256 && moe["tokens"] as? Int == 128, "\(long) \(moe)")
        for row in [forward, long, moe] { #expect((row["note"] as? String ?? "").hasPrefix("ppl "), "\(row)") }
    }

    @Test func unknownRowIsAUsageError() throws {
        let r = try ingot(["bench", "suite", fixture("tiny-moe-austen"), "--text", fixture("texts/emma.txt"), "--skip", "nope"])
        #expect(r.status != 0 && r.stderr.contains("--skip 'nope'"), "\(r.stderr)")
    }
}
