import IngotCalibration
import IngotCore
import IngotForward
import IngotModel

/// One decoder layer run on its calibration sample (its full-precision input, from the calibration artifact): the
/// input every non-expert linear sees, and the MoE routing. Routed experts are not loaded; their inputs come from
/// the MoE input rows routed to them (`ReferenceModel.expertInputs`). What AWQ's searches and GPTQ's Hessians start
/// from. What the layer reads from earlier in the forward pass comes with it: its per-layer input (from the
/// calibration) and the k/v it shares with an earlier layer (recomputed from that layer's sample).
struct LayerCapture {
    /// The layer's weights without routed experts.
    let weights: LayerWeights
    let batch: SequenceBatch
    /// The precision the layer's linears are stored in (of the recipe's first non-expert linear).
    let precision: ComputePrecision
    /// The input of every non-expert site on the sample.
    let inputs: [LinearSite: [Float]]
    let routing: Routing?
    /// The routed experts' input over every token (the MoE block's input), empty in dense layers.
    let expertInput: [Float]
    var rows: Int { batch.rows }

    /// `input`: the layer's input to use instead of the calibration sample (`PropagatedInputs`).
    init(model: ReferenceModel, calibration: Calibration, layer: Int, recipe: AWQLayerRecipe, input: [Float]? = nil) throws {
        let w = try LayerWeights(model: model, layer: layer, experts: false)
        weights = w
        batch = SequenceBatch(lengths: calibration.sampleLengths, model: model)
        let h = model.config.hiddenSize
        let sample = try input ?? calibration.sample(layer: layer)
        guard !sample.isEmpty else { throw AWQ.Failure.mismatch("layer \(layer) has no calibration sample") }
        guard sample.count == batch.rows * h else {
            throw AWQ.Failure.mismatch("layer \(layer)'s sample has \(sample.count) values, expected \(batch.rows) × \(h)")
        }
        let names = w.names, config = model.config
        let first = recipe.linears.first { !AWQMapping.isExpertTemplate($0) }.flatMap { names.tensor(module: $0, config: config) }
        precision = ComputePrecision(dtype: first.flatMap { model.source.info($0.name)?.dtype } ?? .f32)
        if config.gemma4.map({ $0.perLayerInputSize > 0 }) == true {
            let p = calibration.layers[layer].perLayerInput
            guard p.count == batch.rows * config.gemma4!.perLayerInputSize else {
                throw AWQ.Failure.mismatch("layer \(layer) has no per-layer input sample (made by an older 'ingot calibrate'; calibrate again)")
            }
            batch.state.perLayerInputs[layer] = p
        }
        if let src = config.gemma4?.kvSource[layer] {
            let input = try calibration.sample(layer: src)
            guard input.count == batch.rows * h else { throw AWQ.Failure.mismatch("layer \(src) has no calibration sample") }
            try model.storeSharedKV(layer: src, input: input, batch)
        }
        // One pass of the layer records every non-expert site's input (experts are read one at a time).
        var captured: [LinearSite: [Float]] = [:]
        var moe: (input: [Float], routing: Routing)?
        var x = sample
        try model.decoderLayer(&x, w, batch, observer: { site, input, _ in
            switch site {
            case .expert, .expertDown: break
            default: captured[site] = input
            }
        }, routingObserver: { moe = ($0, $1) }, expert: { try model.expert($0, names: names) })
        inputs = captured
        routing = moe?.routing
        expertInput = moe?.input ?? []
    }
}
