#!/usr/bin/env python3
"""The same RTN INT4 (group-affine, compressed-tensors formulas) and FP8 E4M3 per-channel quantization in numpy,
for side-by-side throughput with `ingot bench quantize`. f32 arithmetic (numpy has no bf16), so the work is the
same though the last bits may differ.  usage: quant_numpy.py CHECKPOINT.safetensors rtn-int4|fp8-e4m3 [GROUP]"""
import json, struct, sys, time
import numpy as np

path, scheme = sys.argv[1], sys.argv[2]
group = int(sys.argv[3]) if len(sys.argv) > 3 else 64
raw = np.memmap(path, dtype=np.uint8, mode="r")
n = struct.unpack("<Q", raw[:8].tobytes())[0]
header = json.loads(raw[8:8 + n].tobytes())
start = 8 + n
targets = [(k, v) for k, v in header.items() if k != "__metadata__" and len(v["shape"]) == 2 and k.endswith(".weight")
           and "norm" not in k and "embed" not in k and "lm_head" not in k]
E4M3 = None
def fp8_e4m3(x):
    # round to E4M3 (3 mantissa bits, bias 7) with saturation at 448: the same arithmetic a cast does
    a = np.abs(x); s = np.sign(x)
    e = np.floor(np.log2(np.maximum(a, 2.0 ** -9)))
    e = np.maximum(e, -6)
    q = np.round(a / 2.0 ** (e - 3)) * 2.0 ** (e - 3)
    return (s * np.minimum(q, 448)).astype(np.float32)
best = 1e9
total = sum(int(np.prod(v["shape"])) * 2 for _, v in targets)
for _ in range(2):
    t0 = time.perf_counter()
    for k, v in targets:
        b, e = v["data_offsets"]
        w16 = np.frombuffer(raw[start + b:start + e], dtype=np.uint16).reshape(v["shape"])
        w = (w16.astype(np.uint32) << 16).view(np.float32)
        if scheme == "rtn-int4":
            rows, cols = w.shape
            g = w[:, : cols // group * group].reshape(rows, -1, group)
            mn = np.minimum(g.min(-1), 0); mx = np.maximum(g.max(-1), 0)
            s = (mx - mn) / 15; s[s == 0] = 1e-8
            zp = np.clip(np.round(-8 - mn / s), -8, 7)
            q = np.clip(np.round(g / s[..., None] + zp[..., None]), -8, 7).astype(np.int8)
        else:
            s = np.abs(w).max(1, keepdims=True) / 448; s[s == 0] = 1e-8
            q = fp8_e4m3(np.clip(w / s, -448, 448))
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"bytes": total, "seconds": best}))
