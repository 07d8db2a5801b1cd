import Testing
import IngotCore

struct JSONTests {
    @Test func keepsOrderAndRoundTrips() throws {
        let text = #"{"b":1,"a":[true,false,null,"x\u00e9\n"],"c":{"d":-2.5e3}}"#
        let v = try JSON.parse(text)
        #expect(v.objectValue?.map(\.key) == ["b", "a", "c"])
        #expect(v["c"]?["d"]?.doubleValue == -2500)
        #expect(v["b"]?.intValue == 1)
        #expect(try JSON.parse(v.serialized()) == v)
    }

    @Test(arguments: [
        ("{\"a\":1,\"a\":2}", "duplicate key"), ("{", "expected a string key"), ("[1", "unterminated"), ("[1,]", "unexpected character"),
        ("\"\\ud800\"", "surrogate"), ("{} x", "trailing"), ("01x", "trailing"), ("\"a\u{01}\"", "control"),
        (String(repeating: "[", count: 100), "nesting"),
    ])
    func rejectsMalformed(text: String, reason: String) {
        do {
            _ = try JSON.parse(text)
            Issue.record("accepted \(text)")
        } catch let e as JSONError {
            #expect(e.description.contains(reason), "\(e)")
        } catch { Issue.record("\(error)") }
    }

    @Test func integersAreExact() throws {
        #expect(try JSON.parse("9007199254740993").intValue == 9_007_199_254_740_993)
        #expect(try JSON.parse("1.0").intValue == nil)
    }
}
