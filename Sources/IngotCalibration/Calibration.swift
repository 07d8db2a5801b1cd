import IngotCore

/// What calibration learned about a model: per-layer, per-linear-input statistics (per expert for MoE layers),
/// expert coverage, a sample of each layer's full-precision input for AWQ's searches, and provenance.
public struct Calibration: Sendable {
    /// How experts' statistics are gathered.
    public enum ExpertMode: String, Sendable, CaseIterable {
        /// Only the tokens routed to the expert (what it sees at inference).
        case routed
        /// Every token (llm-compressor's calibrate-all-experts); layer outputs still use routing.
        case allTokens = "all-tokens"
    }

    /// What happens to an expert that gets fewer than `minExpertTokens` routed tokens.
    public enum StarvedExpertPolicy: String, Sendable, CaseIterable {
        /// Its statistics come from every token of the layer.
        case allTokens = "all-tokens"
        /// It is not smoothed or clipped: plain round-to-nearest.
        case rtn
    }

    /// Where an expert's statistics came from.
    public enum ExpertStatistics: String, Sendable { case routed, allTokens = "all-tokens", none }

    public struct Expert: Sendable, Equatable {
        /// Calibration tokens routed to the expert.
        public var routedTokens: Int
        public var statistics: ExpertStatistics
        /// True when the expert fell below the threshold (the report names it).
        public var starved: Bool
        public init(routedTokens: Int, statistics: ExpertStatistics, starved: Bool) {
            self.routedTokens = routedTokens
            self.statistics = statistics
            self.starved = starved
        }
    }

    public struct Layer: Sendable {
        public var sites: [LinearSite: ActivationStats] = [:]
        public var experts: [Expert] = []
        /// The layer's input (full precision) for the sample sequences, `[sampleRows, hidden]`.
        public var sample: [Float] = []
        /// Gemma 4: the layer's per-layer input for the sample sequences, `[sampleRows, perLayerInputSize]`
        /// (computed from the tokens, which the calibration does not keep); empty for other models.
        public var perLayerInput: [Float] = []
        /// A share only (`calibrate --shard`): every expert's down-projection input over all of the share's tokens,
        /// kept until the merge knows which experts are starved over the whole data.
        public var allTokenDown: [Int: ActivationStats] = [:]
    }

    /// Which part of the data a share of a split calibration covers (`calibrate --shard i/N`).
    public struct Share: Sendable, Equatable {
        /// 1-based.
        public var index: Int
        public var count: Int
        /// Positions of its sequences in the shuffled set, and the set's size.
        public var sequences: Range<Int>
        public var totalSequences: Int
        public init(index: Int, count: Int, sequences: Range<Int>, totalSequences: Int) {
            self.index = index; self.count = count; self.sequences = sequences; self.totalSequences = totalSequences
        }

        /// Share `index` of `count` of `total` sequences: contiguous, sizes differing by at most one.
        public init(index: Int, count: Int, totalSequences total: Int) {
            self.init(index: index, count: count, sequences: (index - 1) * total / count..<index * total / count, totalSequences: total)
        }
    }

    public struct Settings: Sendable, Equatable {
        public var expertMode: ExpertMode = .routed
        public var minExpertTokens = 32
        public var starved: StarvedExpertPolicy = .allTokens
        /// Rows of layer input kept for AWQ's searches and GPTQ's Hessians (whole sequences, at least one). AWQ's
        /// clip search gains from every row (`AWQ.searchTokens`); each costs `hidden × 4` bytes per layer in the
        /// calibration file.
        public var sampleTokens = 16384
        public init() {}
    }

    public var layers: [Layer]
    public var settings: Settings
    /// Lengths of the sample sequences whose layer inputs are kept (the first sequences of the set).
    public var sampleLengths: [Int]
    public var tokens: Int
    public var sequences: Int
    public var provenance: [(key: String, value: JSON)]
    /// Set on a share of a split calibration: statistics are partial and experts not yet judged starved.
    public var share: Share?
    /// Loads layer `l`'s sample when `layers[l].sample` was left empty (a calibration file read lazily).
    public var sampleLoader: (@Sendable (Int) throws -> [Float])?

    /// Layer `l`'s input sample, from memory or from the file.
    public func sample(layer l: Int) throws -> [Float] {
        if !layers[l].sample.isEmpty || sampleRows == 0 { return layers[l].sample }
        return try sampleLoader?(l) ?? []
    }

    public init(layers: [Layer], settings: Settings, sampleLengths: [Int], tokens: Int, sequences: Int,
                provenance: [(key: String, value: JSON)]) {
        self.layers = layers
        self.settings = settings
        self.sampleLengths = sampleLengths
        self.tokens = tokens
        self.sequences = sequences
        self.provenance = provenance
    }

    public var sampleRows: Int { sampleLengths.reduce(0, +) }

    /// Decides, from the routed token counts, which experts are starved and what their statistics are: their own
    /// routed rows, all tokens (the MoE input's statistics for gate/up, `allTokenDown(e)` for down), or none (RTN).
    static func judgeExperts(_ layer: inout Layer, settings: Settings, allTokenDown: (Int) throws -> ActivationStats) rethrows {
        guard !layer.experts.isEmpty else { return }
        for e in layer.experts.indices {
            let routed = layer.experts[e].routedTokens
            let starved = routed < settings.minExpertTokens
            var source: ExpertStatistics = settings.expertMode == .allTokens ? .allTokens : .routed
            if starved && settings.expertMode == .routed {
                if settings.starved == .allTokens, let all = layer.sites[.moe] ?? layer.sites[.mlp] {
                    layer.sites[.expert(e)] = all
                    layer.sites[.expertDown(e)] = try allTokenDown(e)
                    source = .allTokens
                } else {
                    source = .none
                }
            }
            layer.experts[e] = Expert(routedTokens: routed, statistics: source, starved: starved)
        }
    }

    /// Experts below the token threshold: (layer, expert, routed tokens, what was done).
    public var starvedExperts: [(layer: Int, expert: Int, tokens: Int, statistics: ExpertStatistics)] {
        layers.enumerated().flatMap { l, layer in
            layer.experts.enumerated().filter(\.element.starved).map { (l, $0.offset, $0.element.routedTokens, $0.element.statistics) }
        }
    }
}

import IngotForward

extension LinearSite {
    /// Parses `description` back.
    public init?(name: String) {
        switch name {
        case "attention": self = .attention
        case "o_proj": self = .output
        case "mlp": self = .mlp
        case "down_proj": self = .down
        case "q_b_proj": self = .qLatent
        case "kv_b_proj": self = .kvLatent
        case "shared_experts.down_proj": self = .sharedDown
        case "per_layer_input_gate": self = .perLayerGate
        case "per_layer_projection": self = .perLayerProjection
        case "moe": self = .moe
        default:
            let p = name.split(separator: ".")
            guard p.count >= 2, p[0] == "expert", let e = Int(p[1]), e >= 0 else { return nil }
            if p.count == 2 { self = .expert(e) } else if p.count == 3, p[2] == "down_proj" { self = .expertDown(e) } else { return nil }
        }
    }
}
