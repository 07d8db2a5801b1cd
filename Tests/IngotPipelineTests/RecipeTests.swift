import Testing
import IngotQuant
@testable import IngotPipeline

/// Recipes: schemes and overrides through QuantScheme, exports through the registered layouts, typos refused.
@Suite struct RecipeTests {
    func parse(_ text: String) throws -> Recipe { try Recipe.parse(yaml: text, path: "/r/recipe.yaml") }

    @Test func schemesOverridesAndExports() throws {
        let r = try parse("""
        source: m
        output: out
        calibration: {data: d.txt}
        quantize:
          scheme: awq-int4
          group_size: 64
          overrides: [{pattern: "re:.*down_proj", scheme: rtn-int8, symmetric: true}, {pattern: lm_x, scheme: fp8-e4m3}]
        exports: [compressed-tensors, autoawq]
        """)
        #expect(r.quantize.scheme == .awqInt4 && r.quantize.awq)
        #expect(r.quantize.plan.defaults.groupSize == 64)
        let o = r.quantize.plan.overrides
        #expect(o.count == 2 && o[0].settings.scheme == .rtnInt8 && o[0].settings.groupSize == 64 && o[0].settings.symmetric)
        #expect(o[1].settings.scheme == .fp8E4M3 && o[1].settings.groupSize == nil)
        #expect(r.exports.map(\.name) == ["compressed-tensors", "autoawq"])
        #expect(r.resolve("d.txt") == "/r/d.txt")
        #expect(try parse("source: m\noutput: o\nquantize: {scheme: rtn-int8}\n").quantize.plan.defaults.groupSize == 128,
                "the scheme's default group")
    }

    @Test(arguments: [
        ("quantize: {scheme: int3}", "quantize.scheme"),
        ("quantize: {scheme: awq-int4}", "calibration"),
        ("quantize: {scheme: rtn-int4, overrides: [{pattern: x, scheme: awq-int4}]}", "needs calibration over the whole model"),
        ("quantize: {scheme: rtn-int4, group_sise: 3}", "group_sise"),
        ("quantize: {scheme: rtn-int4}\nexports: [gguff]", "exports[0]"),
        ("quantize: {scheme: rtn-int4, group_size: 0}", "group_size"),
        ("calibration: {data: d.txt}\nquantize: {scheme: awq-int4, search_tokens: -1}", "'quantize.search_tokens' must be an integer ≥ 0"),
        ("quantize: {scheme: rtn-int4, search_tokens: 64}", "quantize.search_tokens"),
        ("calibration: {data: d.txt}\nquantize: {scheme: awq-int4, clip: false, symmetric_clip: true}", "quantize.symmetric_clip"),
    ])
    func mistakesAreNamed(body: String, message: String) {
        do {
            _ = try parse("source: m\noutput: o\n" + body + "\n")
            Issue.record("accepted: \(body)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }
}
