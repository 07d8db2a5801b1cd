import Testing
@testable import IngotQuant

/// Scheme names and the `SCHEME[:gN][:channel][:sym|:asym]` spec parser shared by the CLI, recipes and bench.
@Suite struct QuantSchemeTests {
    @Test func everyRegisteredNameRoundTrips() throws {
        for s in QuantScheme.all { #expect(try QuantScheme.named(s.name) == s) }
        #expect(Set(QuantScheme.all.map(\.name)).count == QuantScheme.all.count, "names are unique")
        #expect(throws: QuantScheme.Failure.unknown("rtn-int3")) { try QuantScheme.named("rtn-int3") }
    }

    @Test func propertiesFollowTheCodes() {
        #expect(QuantScheme.rtnInt4.bits == 4 && QuantScheme.rtnInt8.bits == 8 && QuantScheme.fp8E5M2.bits == 8)
        #expect(QuantScheme.awqInt4.codes == QuantScheme.rtnInt4.codes && QuantScheme.awqInt4.needsCalibration)
        #expect(!QuantScheme.rtnInt4.needsCalibration)
        #expect(QuantScheme.rtnInt4.codeDType == .u4 && QuantScheme.fp8E4M3.codeDType == .f8e4m3 && QuantScheme.none.codeDType == nil)
        #expect(QuantizationPlan.Settings(scheme: .rtnInt8).groupSize == 128)
        #expect(QuantizationPlan.Settings(scheme: .fp8E4M3).groupSize == nil)
    }

    @Test func specModifiers() throws {
        var base = QuantizationPlan.Settings(scheme: .rtnInt4)
        base.groupSize = 64
        let a = try QuantizationPlan.Settings(spec: "rtn-int8:g32:sym", base: base)
        #expect(a.scheme == .rtnInt8 && a.groupSize == 32 && a.symmetric)
        let b = try QuantizationPlan.Settings(spec: "rtn-int8", base: base)
        #expect(b.groupSize == 64 && !b.symmetric, "an integer override keeps the base's group")
        let c = try QuantizationPlan.Settings(spec: "rtn-int4:channel:asym", base: a)
        #expect(c.groupSize == nil && !c.symmetric)
        let d = try QuantizationPlan.Settings(spec: "rtn-int4", base: QuantizationPlan.Settings(scheme: .fp8E4M3))
        #expect(d.groupSize == 128, "from FP8, an integer scheme starts at its own default group")
        #expect(throws: QuantScheme.Failure.modifier(spec: "rtn-int4:x", modifier: "x")) {
            try QuantizationPlan.Settings(spec: "rtn-int4:x", base: base)
        }
        #expect(throws: QuantScheme.Failure.groupSize(spec: "rtn-int4:g0")) { try QuantizationPlan.Settings(spec: "rtn-int4:g0", base: base) }
        #expect(throws: QuantScheme.Failure.wholeModel("awq-int4")) { try QuantizationPlan.Settings(spec: "awq-int4", base: base) }
        #expect(try QuantizationPlan.Settings(spec: "mxfp4", base: base).groupSize == 32, "MX formats have their own group")
        #expect(throws: QuantScheme.Failure.fixedGroup(scheme: "mxfp4", group: 32)) { try QuantizationPlan.Settings(spec: "mxfp4:g64", base: base) }
    }

    @Test func overridesSplitAtTheLastEquals() throws {
        var plan = QuantizationPlan(defaults: .init(scheme: .rtnInt4))
        try plan.addOverride("re:.*(a=b).*down_proj=fp8-e4m3")
        #expect(plan.overrides.first?.pattern == "re:.*(a=b).*down_proj" && plan.overrides.first?.settings.scheme == .fp8E4M3)
        #expect(throws: QuantScheme.Failure.self) { try plan.addOverride("nonsense") }
    }
}
