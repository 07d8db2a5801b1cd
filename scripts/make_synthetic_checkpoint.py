#!/usr/bin/env python3
"""Writes a synthetic bf16 safetensors checkpoint of a given size with Llama-like tensor shapes and Gaussian
weights (std 0.02), for benchmarks.  usage: make_synthetic_checkpoint.py OUT.safetensors SIZE_GB [--seed 0]"""
import json, struct, sys
import numpy as np

out, gb = sys.argv[1], float(sys.argv[2])
rng = np.random.default_rng(0)
hidden, inter = 2048, 5632
shapes = []
total, layer = 0, 0
target = int(gb * 1e9)
while total < target:
    for name, shape in [("self_attn.q_proj", (hidden, hidden)), ("self_attn.k_proj", (hidden // 4, hidden)),
                        ("self_attn.v_proj", (hidden // 4, hidden)), ("self_attn.o_proj", (hidden, hidden)),
                        ("mlp.gate_proj", (inter, hidden)), ("mlp.up_proj", (inter, hidden)),
                        ("mlp.down_proj", (hidden, inter))]:
        shapes.append((f"model.layers.{layer}.{name}.weight", shape))
        total += shape[0] * shape[1] * 2
    shapes.append((f"model.layers.{layer}.input_layernorm.weight", (hidden,)))
    total += hidden * 2
    layer += 1
header, off = {}, 0
for name, shape in shapes:
    n = int(np.prod(shape)) * 2
    header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
    off += n
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
block = (rng.standard_normal(1 << 22, dtype=np.float32) * 0.02).view(np.uint32)
block = ((block + 0x7FFF + ((block >> 16) & 1)) >> 16).astype(np.uint16)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for name, shape in shapes:
        n = int(np.prod(shape))
        while n > 0:
            k = min(n, block.size)
            f.write(block[:k].tobytes())
            n -= k
print(out, off, "bytes,", len(shapes), "tensors")
