import IngotCore

/// AWQ's per-mapping log as JSON (llm-compressor logs initial and best error per mapping).
extension AWQ.Result {
    public var json: JSON {
        let r = self
        return .object([
            ("seconds", .double(r.seconds)),
            ("clip_error", .object([("before", .double(r.clipError.before)), ("after", .double(r.clipError.after))])),
            ("mappings", .array(r.log.map { m in
                .object([("layer", .int(m.layer)), ("mapping", .string(m.mapping)), ("expert", m.expert.map { .int($0) } ?? .null),
                         ("tokens", .int(m.tokens)), ("rtn_loss", .double(m.rtnLoss)), ("ratio0_loss", .double(m.ratio0Loss)),
                         ("best_loss", .double(m.bestLoss)), ("best_ratio", m.bestRatio.map { .double(Double($0)) } ?? .null),
                         ("skipped", m.skipped.map { .string($0) } ?? .null)])
            })),
        ])
    }
}
