/// One line of the quantize/export report: what happened to a tensor.
public struct ExportRecord: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var from: String
    public var to: String
    /// Findings about the weight before quantization (nil when clean or not quantized).
    public var health: WeightHealth? = nil
}
