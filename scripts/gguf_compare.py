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
ap.add_argument("--ingot-f32", help="Ingot's f32 dequantization of A (ingot dequantize A X.safetensors: Hugging Face names)")
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
    # gguf-py's dequantization of every tensor of A, mapped to Hugging Face names independently of Ingot (llama.cpp's
    # names, the Q/K row interleave undone for llama, stacked experts split), against Ingot's decoded weights.
    from safetensors.torch import load_file  # numpy has no bfloat16; BF16 files dequantize to bf16 tensors
    ours = {k: v.float().numpy() for k, v in load_file(args.ingot_f32).items()}
    arch = bytes(ra.fields["general.architecture"].parts[-1]).decode()
    def num(k): return int(ra.fields[f"{arch}.{k}"].parts[-1][0])
    heads = num("attention.head_count"); kv_heads = num("attention.head_count_kv") if f"{arch}.attention.head_count_kv" in ra.fields else heads
    glob = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}
    layer = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
             "ffn_gate_inp": "block_sparse_moe.gate" if arch == "llama" else "mlp.gate",
             # deepseek2 (MLA, shared experts, routing bias)
             "attn_q_a": "self_attn.q_a_proj", "attn_q_a_norm": "self_attn.q_a_layernorm", "attn_q_b": "self_attn.q_b_proj",
             "attn_kv_a_mqa": "self_attn.kv_a_proj_with_mqa", "attn_kv_a_norm": "self_attn.kv_a_layernorm",
             "ffn_gate_shexp": "mlp.shared_experts.gate_proj", "ffn_up_shexp": "mlp.shared_experts.up_proj",
             "ffn_down_shexp": "mlp.shared_experts.down_proj"}
    exps = {"ffn_gate_exps": ("w1", "gate_proj"), "ffn_up_exps": ("w3", "up_proj"), "ffn_down_exps": ("w2", "down_proj")}
    def unpermute(w, h):
        d = w.shape[0] // h
        return w.reshape(h, d // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)
    worst, checked, missing = 0.0, 0, []
    latent = {}  # layer → {"attn_k_b": [heads, rank, nope], "attn_v_b": [heads, v, rank]}: kv_b_proj per head = [k_bᵀ; v_b]
    for t in ra.tensors:
        deq = dequantize(t.data, t.tensor_type).astype(np.float32)
        named = []
        if t.name in glob: named = [(glob[t.name], deq)]
        else:
            _, l, base, _w = t.name.split(".")
            if base in exps:
                leaf = exps[base][0] if arch == "llama" else exps[base][1]
                moe = "block_sparse_moe" if arch == "llama" else "mlp"
                named = [(f"model.layers.{l}.{moe}.experts.{e}.{leaf}.weight", deq[e]) for e in range(deq.shape[0])]
            elif base == "exp_probs_b":
                named = [(f"model.layers.{l}.mlp.gate.e_score_correction_bias", deq)]
            elif base in ("attn_k_b", "attn_v_b"):
                latent.setdefault(l, {})[base] = deq
                if len(latent[l]) == 2:
                    k, v = latent[l]["attn_k_b"], latent[l]["attn_v_b"]
                    kv = np.concatenate([k.transpose(0, 2, 1), v], axis=1)
                    named = [(f"model.layers.{l}.self_attn.kv_b_proj.weight", kv.reshape(-1, kv.shape[-1]))]
            else:
                w = deq
                if arch == "llama" and base == "attn_q": w = unpermute(deq, heads)
                if arch == "llama" and base == "attn_k": w = unpermute(deq, kv_heads)
                named = [(f"model.layers.{l}.{layer[base]}.weight", w)]
        for n, w in named:
            if n not in ours: missing.append(n); continue
            d = float(np.max(np.abs(w.reshape(ours[n].shape) - ours[n]))) if w.size else 0.0
            worst = max(worst, d); checked += 1
    res.update(dequantized_checked=checked, dequantized_max_abs_diff=worst, not_in_ingot=len(missing))
if args.json: print(json.dumps(res))
else:
    for d in res.get("diffs", []): print("  " + d)
    print(json.dumps({k: v for k, v in res.items() if k != "diffs"}))
