import Testing
import IngotCore

/// Vectors from the reference implementation (Python `xxhash` package, which wraps libxxhash).
struct XXH64Tests {
    static let long: [UInt8] = Array((0..<3).flatMap { _ in (0..<256).map { UInt8($0) } }) + Array("xyz".utf8)

    @Test(arguments: [
        ([UInt8](), "ef46db3751d8e999", "95f0626f6f0a4409"),
        (Array("a".utf8), "d24ec4f1a98c6e5b", "dc6349d489e0f965"),
        (Array("abc".utf8), "44bc2cf5ad770999", "9e755206156676d7"),
        (Array(String(repeating: "0123456789", count: 5).utf8), "4f7ca65914623935", "c7ef91bf7b757a27"),
        (XXH64Tests.long, "e921a1b45bd779f8", "b63555d1bf05377f"),
    ])
    func referenceVectors(input: [UInt8], seed0: String, seed7: String) {
        #expect(XXH64.hex(XXH64.hash(input)) == seed0)
        #expect(XXH64.hex(XXH64.hash(input, seed: 7)) == seed7)
    }
}
