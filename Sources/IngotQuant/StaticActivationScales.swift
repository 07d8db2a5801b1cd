import IngotCalibration
import IngotCore
import IngotForward
import IngotModel

/// Static activation scales from calibration, per linear weight and per expert for MoE layers: FP8 `input_scale`
/// (`absmax / FP8 max`, as llm-compressor's static FP8 schemes export it) and NVFP4 `input_global_scale` (the global
/// scale of the input's absmax, as its `static_minmax` observer gives it). An expert that saw no tokens takes the MoE
/// block input's absmax (its gate/up inputs are a subset of those rows) or, for down_proj, the largest of its
/// layer's experts: never a zero or NaN scale.
public enum StaticActivationScales {
    public static func compute(model: ReferenceModel, calibration cal: Calibration, format: FP8.Format) throws -> [String: Float] {
        try inputAbsmax(model: model, calibration: cal).mapValues { $0 / format.maxValue }
    }

    /// NVFP4 input global scales, in the precision of the model's weights (the activations' dtype).
    public static func nvfp4(model: ReferenceModel, calibration cal: Calibration) throws -> [String: Float] {
        let dtype = model.source.tensors.first { TensorRole(name: $0.name, shape: $0.shape) == .linear }?.dtype ?? .f32
        return try inputAbsmax(model: model, calibration: cal).mapValues {
            NVFP4Quantizer.globalScale(absmax: $0, precision: ComputePrecision(dtype: dtype))
        }
    }

    /// The largest magnitude of each linear weight's calibration input (finite and positive only).
    public static func inputAbsmax(model: ReferenceModel, calibration cal: Calibration) throws -> [String: Float] {
        let c = model.config
        var out: [String: Float] = [:]
        for (l, layer) in cal.layers.enumerated() where l < c.layers {
            let n = LayerNames(config: c, layer: l) { model.source.info($0) != nil }
            func absmax(_ s: LinearSite) -> Float? {
                guard let st = layer.sites[s], st.tokens > 0 else { return nil }
                return st.absmax.max()
            }
            func set(_ name: String?, _ a: Float?) { if let name, !name.isEmpty, let a, a > 0, a.isFinite { out[name] = a } }
            for name in [n.q, n.k, n.v] where !name.isEmpty { set(name, absmax(.attention)) }
            if let la = n.linearAttention {
                for name in la.inputLinears.large + la.inputLinears.small { set(name, absmax(.attention)) }
                set(la.out, absmax(.output))
            }
            if let la = n.latent {
                for name in [la.qA, la.q, la.kvA] { set(name, absmax(.attention)) }
                set(la.qB, absmax(.qLatent)); set(la.kvB, absmax(.kvLatent))
            }
            if let sh = n.shared { set(sh.gate, absmax(.mlp)); set(sh.up, absmax(.mlp)); set(sh.down, absmax(.sharedDown)) }
            set(n.o, absmax(.output))
            set(n.attentionGate, absmax(.attention))
            if let g = n.gemma4 { set(g.perLayerGate, absmax(.perLayerGate)); set(g.perLayerProjection, absmax(.perLayerProjection)) }
            set(n.gate, absmax(.mlp)); set(n.up, absmax(.mlp)); set(n.down, absmax(.down))
            let downMax = n.experts.indices.compactMap { absmax(.expertDown($0)) }.max()
            for (e, ex) in n.experts.enumerated() {
                let names: (gate: String, up: String, down: String)
                switch ex {
                case let .separate(g, u, d): names = (g, u, d)
                case let .fused(gu, _, x), let .fusedTransposed(gu, _, x):  // exported per expert
                    let p = String(gu.dropLast("gate_up_proj".count)) + "\(x)."
                    names = (p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight")
                }
                let gateUp = absmax(.expert(e)) ?? absmax(.mlp)
                set(names.gate, gateUp); set(names.up, gateUp)
                set(names.down, absmax(.expertDown(e)) ?? downMax)
            }
        }
        return out
    }
}
