import IngotCalibration
import IngotFormats
import IngotForward
import IngotModel

/// Ingot's calibration as llama.cpp's importance matrix: for each quantized GGUF weight, the per-column mean of x²
/// over the tokens its linear saw (`llama-imatrix`'s semantics), per expert over the tokens routed to it.
///
/// DeepSeek's MLA: `attn_q_a` / `attn_kv_a_mqa` (or `attn_q`) take the attention input, `attn_q_b` the q latent;
/// `attn_k_b` / `attn_v_b` (the per-head halves of `kv_b_proj`) take per-head q_nope and latent attention outputs,
/// which calibration does not observe: they are quantized without importance, and `notes` says so.
///
/// Experts calibration judged starved keep what calibration decided: all-token statistics (`--starved-experts
/// all-tokens`, the default) or none, i.e. ggml's reference quantization without importance (`rtn`); `notes`
/// names every one.
public struct GGUFImportance {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noSquares(layer: Int, site: String)
        public var description: String {
            switch self {
            case let .noSquares(l, s): "calibration layer \(l) site \(s) has no mean x² (the file predates it): run 'ingot calibrate' again to use it as a GGUF importance matrix"
            }
        }
    }

    /// (layer, GGUF suffix, expert) → mean x².
    private var table: [String: [Float]] = [:]
    /// One line per starved expert, saying what its importance is.
    public private(set) var notes: [String] = []

    public init(calibration cal: Calibration, model c: ModelConfig) throws {
        for (l, layer) in cal.layers.enumerated() {
            func sq(_ site: LinearSite) throws -> [Float]? {
                guard let s = layer.sites[site] else { return nil }
                guard let q = s.meanSquares else { throw Failure.noSquares(layer: l, site: "\(site)") }
                return s.tokens > 0 ? q : nil
            }
            func put(_ suffix: String, _ expert: Int?, _ v: [Float]?) { if let v { table[Self.key(l, suffix, expert)] = v } }
            let attn = try sq(.attention)
            for s in ["attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_q_a.weight", "attn_kv_a_mqa.weight"] { put(s, nil, attn) }
            put("attn_q_b.weight", nil, try sq(.qLatent))
            if layer.sites[.kvLatent] != nil, !notes.contains(where: { $0.hasPrefix("attn_k_b") }) {
                notes.append("attn_k_b, attn_v_b: quantized without importance (their inputs, per-head q_nope and latent attention outputs, are not what calibration observes)")
            }
            put("attn_output.weight", nil, try sq(.output))
            let mlp = try sq(.mlp)
            if layer.experts.isEmpty {
                put("ffn_gate.weight", nil, mlp); put("ffn_up.weight", nil, mlp)
                put("ffn_down.weight", nil, try sq(.down))
            } else {
                put("ffn_gate_shexp.weight", nil, mlp); put("ffn_up_shexp.weight", nil, mlp)
                put("ffn_down_shexp.weight", nil, try sq(.sharedDown))
                for (e, x) in layer.experts.enumerated() {
                    if x.starved {
                        notes.append("layer \(l) expert \(e): \(x.routedTokens) routed calibration tokens (< \(cal.settings.minExpertTokens)); "
                                     + (x.statistics == .allTokens ? "importance from all of the layer's tokens" : "quantized without importance"))
                    }
                    guard x.statistics != .none else { continue }
                    let g = try sq(.expert(e))
                    put("ffn_gate_exps.weight", e, g); put("ffn_up_exps.weight", e, g)
                    put("ffn_down_exps.weight", e, try sq(.expertDown(e)))
                }
            }
        }
    }

    static func key(_ l: Int, _ suffix: String, _ e: Int?) -> String { "\(l)/\(suffix)/\(e.map(String.init) ?? "-")" }

    /// The importance of a GGUF tensor (an expert of a stacked one); nil for tensors calibration did not observe
    /// (embeddings, output).
    public func values(_ gguf: String, _ expert: Int?) -> [Float]? {
        let (layer, suffix) = GGUFNames.split(gguf)
        guard let l = layer else { return nil }
        return table[Self.key(l, suffix, expert)]
    }
}

