import IngotCore

/// How a quantized tensor in an `.ingot` file dequantizes (formats/ingot.md §6).
///
/// The stored tensor holds the codes; `scale` (and `zeroPoint`) name companion tensors in the same file.
/// - `int-affine` / `int-symmetric`: codes are unsigned `bits`-bit integers (`U4`: two per byte, element 2k in the
///   low nibble; `U8`: one per byte), row-major `[out, in]`; `w = (q − z) · s` with `z` from the zero-point
///   tensor (`U8 [out, groups]`) or `2^(bits−1)` when symmetric; `s` is `[out, groups]` (F32/BF16/F16), a group
///   covering `groupSize` consecutive input columns (the last one may be shorter; per-channel = one group).
/// - `fp8-e4m3` / `fp8-e5m2`: codes `F8_E4M3`/`F8_E5M2` `[out, in]`; `w = fp8 · s` with `s` of shape `[1]`
///   (tensor), `[out, 1]` (channel) or `[⌈out/b0⌉, ⌈in/b1⌉]` (block `[b0, b1]`).
/// - `fp4-e2m1`: codes are FP4 E2M1 (`U4`, two per byte as for integers), `w = e2m1 · s` per group. MXFP4 (groups
///   of 32): a `U8` scale tensor `[out, groups]` of E8M0 exponents, `s = 2^(e − 127)`. NVFP4 (groups of 16): an
///   `F8_E4M3` scale tensor `[out, groups]` and an F32 `[1]` global scale tensor `g` (`global_scale`), `s = e4m3 / g`.
public struct QuantizationInfo: Sendable, Equatable {
    public enum Scheme: String, Sendable { case intAffine = "int-affine", intSymmetric = "int-symmetric",
                                              fp8E4M3 = "fp8-e4m3", fp8E5M2 = "fp8-e5m2", fp4E2M1 = "fp4-e2m1" }
    public enum Granularity: String, Sendable { case tensor, channel, group, block }

    public var scheme: Scheme
    public var bits: Int
    public var granularity: Granularity
    public var groupSize: Int?
    public var block: [Int]?
    public var scale: String
    public var zeroPoint: String?
    /// NVFP4: the F32 `[1]` global scale tensor.
    public var globalScale: String?
    public var originalDType: DType
    public var originalShape: [Int]

    public init(scheme: Scheme, bits: Int, granularity: Granularity, groupSize: Int? = nil, block: [Int]? = nil,
                scale: String, zeroPoint: String? = nil, globalScale: String? = nil, originalDType: DType, originalShape: [Int]) {
        self.scheme = scheme; self.bits = bits; self.granularity = granularity; self.groupSize = groupSize
        self.block = block; self.scale = scale; self.zeroPoint = zeroPoint; self.globalScale = globalScale; self.originalDType = originalDType
        self.originalShape = originalShape
    }

    public var json: JSON {
        var kv: [(key: String, value: JSON)] = [("scheme", .string(scheme.rawValue)), ("bits", .int(bits)),
                                                ("granularity", .string(granularity.rawValue))]
        if let g = groupSize { kv.append(("group_size", .int(g))) }
        if let b = block { kv.append(("block", .array(b.map { .int($0) }))) }
        kv.append(("scale", .string(scale)))
        if let z = zeroPoint { kv.append(("zero_point", .string(z))) }
        if let g = globalScale { kv.append(("global_scale", .string(g))) }
        kv.append(("original_dtype", .string(originalDType.rawValue)))
        kv.append(("original_shape", .array(originalShape.map { .int($0) })))
        return .object(kv)
    }

    /// Parses and validates the index's `quantization` object.
    public init(json: JSON, tensor: String, file: String) throws {
        func bad(_ r: String) -> NativeError { .indexInvalid(file: file, reason: "tensor '\(tensor)' quantization: \(r)") }
        guard let s = json["scheme"]?.stringValue, let sc = Scheme(rawValue: s) else { throw bad("unknown or missing scheme") }
        guard let b = json["bits"]?.intValue, [4, 8].contains(b) else { throw bad("bits must be 4 or 8") }
        guard let g = json["granularity"]?.stringValue, let gr = Granularity(rawValue: g) else { throw bad("unknown granularity") }
        guard let scale = json["scale"]?.stringValue else { throw bad("missing scale tensor name") }
        guard let od = json["original_dtype"]?.stringValue, let odt = DType(rawValue: od) else { throw bad("unknown original_dtype") }
        guard let osh = json["original_shape"]?.arrayValue?.compactMap(\.intValue), osh.count == 2, osh.allSatisfy({ $0 > 0 })
        else { throw bad("original_shape must be [out, in]") }
        scheme = sc; bits = b; granularity = gr; self.scale = scale; originalDType = odt; originalShape = osh
        zeroPoint = json["zero_point"]?.stringValue
        globalScale = json["global_scale"]?.stringValue
        groupSize = json["group_size"]?.intValue
        block = json["block"]?.arrayValue?.compactMap(\.intValue)
        if gr == .group { guard let gs = groupSize, gs > 0 else { throw bad("group granularity needs a positive group_size") } }
        if gr == .block { guard let bl = block, bl.count == 2, bl.allSatisfy({ $0 > 0 }) else { throw bad("block must be [rows, cols]") } }
        if sc == .intAffine, zeroPoint == nil { throw bad("int-affine needs a zero_point tensor") }
        if sc == .fp8E4M3 || sc == .fp8E5M2 { guard b == 8 else { throw bad("fp8 schemes have 8 bits") } }
        if sc == .fp4E2M1 { guard b == 4, gr == .group else { throw bad("fp4-e2m1 has 4 bits in groups") } }
        if globalScale != nil, sc != .fp4E2M1 { throw bad("only fp4-e2m1 (NVFP4) has a global_scale tensor") }
    }

    /// Number of scale columns for a row of `in` inputs.
    public var groupsPerRow: Int {
        let inputs = originalShape[1]
        switch granularity {
        case .group: return (inputs + groupSize! - 1) / groupSize!
        case .block: return (inputs + block![1] - 1) / block![1]
        case .channel, .tensor: return 1
        }
    }
}
