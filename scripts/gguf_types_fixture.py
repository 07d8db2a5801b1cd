#!/usr/bin/env python3
"""Writes fixtures/gguf/llama-quantize-types.json: the tensor types llama-quantize chose for each model and mix
(read from its output files with gguf-py), with the facts its choice depends on, for GGUFTypePlannerTests.
usage: gguf_types_fixture.py OUT.json MODEL=F32.gguf:TYPE=QUANT.gguf[,TYPE=QUANT.gguf...] ..."""
import json, sys
import gguf
out, specs = sys.argv[1], sys.argv[2:]
res = {}
for spec in specs:
    model, rest = spec.split("=", 1)
    base, *quants = rest.split(":")
    r = gguf.GGUFReader(base)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    def field(k, default=0):
        f = r.fields.get(f"{arch}.{k}")
        return int(f.parts[-1][0]) if f else default
    entry = {"architecture": arch, "layers": field("block_count"), "experts": field("expert_count"),
             "heads": field("attention.head_count"), "kv_heads": field("attention.head_count_kv"),
             "tensors": [[t.name, [int(d) for d in t.shape]] for t in r.tensors], "types": {}}
    for q in ",".join(quants).split(","):
        ftype, path = q.split("=")
        qr = gguf.GGUFReader(path)
        entry["types"][ftype] = {t.name: t.tensor_type.name for t in qr.tensors}
    res[model] = entry
json.dump(res, open(out, "w"), indent=0, sort_keys=True)
print(f"wrote {out}")
