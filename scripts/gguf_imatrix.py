#!/usr/bin/env python3
"""Ingot's calibration next to llama.cpp's importance matrix (llama-imatrix's GGUF file: `NAME.in_sum2` sums of x²
and `NAME.counts` token counts per expert), with the `gguf` package and an independent name mapping.

  compare IMATRIX.gguf CALIB.safetensors [--json]
      per GGUF tensor (and expert) the largest relative difference between llama-imatrix's mean x² (sum / count) and
      Ingot's (`layers.L.SITE.mean_sq` of `ingot unpack CALIB.ingot CALIB.safetensors`), and the token counts.
  write CALIB.safetensors OUT.gguf
      Ingot's mean x² as an imatrix GGUF file (counts 1, so llama-quantize's sum / count is the value itself), for
      `llama-quantize --imatrix`: with it llama-quantize must write the bytes `ingot export --calib` writes.

Dense llama/mixtral layers: attention → attn_q/k/v, o_proj → attn_output, mlp → ffn_gate/up, down_proj → ffn_down;
experts: expert.E → ffn_gate/up_exps row E, expert.E.down_proj → ffn_down_exps row E."""
import json, sys
import numpy as np
import gguf
from safetensors.numpy import load_file

DENSE = {"attn_q": "attention", "attn_k": "attention", "attn_v": "attention", "attn_output": "o_proj",
         "ffn_gate": "mlp", "ffn_up": "mlp", "ffn_down": "down_proj"}


def ingot_values(cal, layer, suffix, experts):
    """Ingot's mean x² for a GGUF tensor suffix of a layer: [experts or 1, width], or None."""
    if suffix.endswith("_exps"):
        site = "down_proj.mean_sq" if suffix == "ffn_down_exps" else "mean_sq"
        rows = [cal.get(f"layers.{layer}.expert.{e}.{site}") for e in range(experts)]
        return None if any(r is None for r in rows) else np.stack(rows).astype(np.float64)
    site = "mlp" if suffix == "ffn_gate_inp" else DENSE.get(suffix, "-")  # the router sees the experts' input
    v = cal.get(f"layers.{layer}.{site}.mean_sq")
    return None if v is None else v.astype(np.float64)[None, :]


def compare(imatrix_path, calib_path, as_json):
    im, cal = gguf.GGUFReader(imatrix_path), load_file(calib_path)
    sums = {t.name[:-8]: np.array(t.data, np.float64) for t in im.tensors if t.name.endswith(".in_sum2")}
    counts = {t.name[:-7]: np.array(t.data, np.float64).reshape(-1) for t in im.tensors if t.name.endswith(".counts")}
    rows, worst = [], 0.0
    for name in sorted(sums):
        parts = name.split(".")
        if parts[0] != "blk":
            continue
        c = counts[name]
        ref = sums[name].reshape(len(c), -1) / np.maximum(c, 1)[:, None]
        ours = ingot_values(cal, int(parts[1]), parts[2], len(c))
        if ours is None:
            rows.append({"tensor": name, "ingot": None}); continue
        rel = [float(np.abs(ref[e] - ours[e]).max() / max(np.abs(ref[e]).max(), 1e-30)) for e in range(len(c))]
        worst = max(worst, max(rel))
        rows.append({"tensor": name, "tokens": [int(x) for x in c], "max_rel_diff": max(rel)})
    missing = [r["tensor"] for r in rows if r.get("ingot", 0) is None]
    res = {"tensors": len(rows), "without_ingot_values": missing, "max_rel_diff": worst}
    if as_json:
        print(json.dumps(res))
    else:
        for r in rows:
            print(r)
        print(res)


def write(calib_path, out_path):
    cal = load_file(calib_path)
    layers = sorted({int(k.split(".")[1]) for k in cal if k.startswith("layers.")})
    w = gguf.GGUFWriter(out_path, arch="imatrix")
    # llama-imatrix's keys (the writer's architecture key is not part of the format; loaders ignore it).
    w.add_type("imatrix")
    w.add_array("imatrix.datasets", ["ingot calibration"])
    w.add_uint32("imatrix.chunk_count", 1)
    w.add_uint32("imatrix.chunk_size", 1)
    for l in layers:
        experts = len({k.split(".")[3] for k in cal if k.startswith(f"layers.{l}.expert.") and k.endswith(".mean_sq")})
        suffixes = list(DENSE) if experts == 0 else ["attn_q", "attn_k", "attn_v", "attn_output",
                                                     "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"]
        for s in suffixes:
            v = ingot_values(cal, l, s, experts)
            if v is None:
                continue
            name = f"blk.{l}.{s}.weight"
            dense = not s.endswith("_exps")
            w.add_tensor(name + ".in_sum2", (v[0] if dense else v).astype(np.float32))
            w.add_tensor(name + ".counts", np.ones(1 if dense else (v.shape[0], 1), np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == "compare":
        compare(a[1], a[2], "--json" in a)
    elif len(a) == 3 and a[0] == "write":
        write(a[1], a[2])
    else:
        print(__doc__, file=sys.stderr); sys.exit(2)
