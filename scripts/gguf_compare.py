#!/usr/bin/env python3
"""Compares two GGUF files tensor by tensor with llama.cpp's gguf-py (the `gguf` package): same names, types,
shapes and bytes; prints the differences and a one-line verdict. With --dequantize, also checks that gguf-py's
dequantization of FILE_A equals Ingot's (`ingot dequantize`'s f32 safetensors given as --ingot-f32).
usage: gguf_compare.py A.gguf B.gguf [--ingot-f32 X.safetensors] [--json]"""
import argparse, json, sys
import numpy as np
import gguf
from gguf.quants import dequantize

ap = argparse.ArgumentParser()
ap.add_argument("a"); ap.add_argument("b", nargs="?")
ap.add_argument("--ingot-f32", help="Ingot's f32 dequantization of A, with GGUF names (ingot dequantize --gguf-names)")
ap.add_argument("--json", action="store_true")
args = ap.parse_args()

ra = gguf.GGUFReader(args.a)
res = {"file": args.a, "tensors": len(ra.tensors)}
if args.b:
    rb = gguf.GGUFReader(args.b)
    tb = {t.name: t for t in rb.tensors}
    same = differ = 0
    diffs = []
    for t in ra.tensors:
        u = tb.get(t.name)
        if u is None: diffs.append(f"{t.name}: only in A"); differ += 1; continue
        if t.tensor_type != u.tensor_type or list(t.shape) != list(u.shape):
            diffs.append(f"{t.name}: {t.tensor_type.name}{list(t.shape)} vs {u.tensor_type.name}{list(u.shape)}"); differ += 1; continue
        if bytes(t.data.tobytes()) == bytes(u.data.tobytes()): same += 1
        else:
            a, b = np.frombuffer(t.data.tobytes(), np.uint8), np.frombuffer(u.data.tobytes(), np.uint8)
            diffs.append(f"{t.name} ({t.tensor_type.name}): {int((a != b).sum())} of {a.size} bytes differ"); differ += 1
    for n in tb:
        if n not in {t.name for t in ra.tensors}: diffs.append(f"{n}: only in B"); differ += 1
    res.update(identical=same, different=differ, diffs=diffs[:20])
if args.ingot_f32:
    from safetensors.numpy import load_file
    ours = load_file(args.ingot_f32)
    worst, checked = 0.0, 0
    for t in ra.tensors:
        if t.name not in ours: continue
        ref = dequantize(t.data, t.tensor_type).reshape(ours[t.name].shape).astype(np.float32)
        d = float(np.max(np.abs(ref - ours[t.name]))) if ref.size else 0.0
        worst = max(worst, d); checked += 1
    res.update(dequantized_checked=checked, dequantized_max_abs_diff=worst)
if args.json: print(json.dumps(res))
else:
    for d in res.get("diffs", []): print("  " + d)
    print(json.dumps({k: v for k, v in res.items() if k != "diffs"}))
