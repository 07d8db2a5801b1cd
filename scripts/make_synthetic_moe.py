#!/usr/bin/env python3
"""A synthetic Mixtral-style MoE checkpoint of a given size, for memory benchmarks (larger than the memory a run
is allowed): bf16 safetensors in ~2 GB shards with model.safetensors.index.json, config.json, Gaussian weights
(std 0.02; norms 1). Shape per layer: hidden 2048, 16 experts of intermediate 1408 (top-2), GQA attention.
usage: make_synthetic_moe.py OUT_DIR SIZE_GB
"""
import json
import os
import sys

import numpy as np

def size_gb(text):
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v > 0 or v == float("inf"):
        sys.exit(f"make_synthetic_moe.py: SIZE_GB must be a positive number of GB, got '{text}'")
    return v


if len(sys.argv) != 3:
    sys.exit("usage: make_synthetic_moe.py OUT_DIR SIZE_GB")
out, gb = sys.argv[1], size_gb(sys.argv[2])
hidden, inter, experts, heads, kv, vocab = 2048, 1408, 16, 16, 4, 4096
hd = hidden // heads
per_layer = 2 * (hidden * hidden * 2 + 2 * kv * hd * hidden + experts * (3 * inter * hidden) + experts * hidden + 2 * hidden)
layers = max(1, int(gb * 1e9 // per_layer))
os.makedirs(out, exist_ok=True)
tensors = [("model.embed_tokens.weight", (vocab, hidden)), ("lm_head.weight", (vocab, hidden)), ("model.norm.weight", (hidden,))]
for l in range(layers):
    p = f"model.layers.{l}."
    tensors += [(p + "input_layernorm.weight", (hidden,)), (p + "post_attention_layernorm.weight", (hidden,)),
                (p + "self_attn.q_proj.weight", (hidden, hidden)), (p + "self_attn.k_proj.weight", (kv * hd, hidden)),
                (p + "self_attn.v_proj.weight", (kv * hd, hidden)), (p + "self_attn.o_proj.weight", (hidden, hidden)),
                (p + "block_sparse_moe.gate.weight", (experts, hidden))]
    for e in range(experts):
        q = p + f"block_sparse_moe.experts.{e}."
        tensors += [(q + "w1.weight", (inter, hidden)), (q + "w3.weight", (inter, hidden)), (q + "w2.weight", (hidden, inter))]
rng = np.random.default_rng(0)
pool = (rng.standard_normal(1 << 24, dtype=np.float32) * 0.02).astype(np.float32).view(np.uint32)
pool = ((pool + 0x7FFF + ((pool >> 16) & 1)) >> 16).astype(np.uint16)  # f32 -> bf16, round to nearest even
one = np.uint16(0x3F80)
shards, cur, size, limit = [], [], 0, 2_000_000_000
for name, shape in tensors:
    n = int(np.prod(shape)) * 2
    if cur and size + n > limit:
        shards.append(cur); cur, size = [], 0
    cur.append((name, shape)); size += n
shards.append(cur)
weight_map, total = {}, 0
for i, shard in enumerate(shards):
    fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
    header, off = {}, 0
    for name, shape in shard:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n; weight_map[name] = fname
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(out, fname), "wb") as f:
        f.write(len(h).to_bytes(8, "little")); f.write(h)
        for k, (name, shape) in enumerate(shard):
            n = int(np.prod(shape))
            if name.endswith("norm.weight"):
                f.write(np.full(n, one, dtype=np.uint16).tobytes())
            else:
                start = (k * 7919) % (len(pool) - 1)
                idx = (start + np.arange(n, dtype=np.int64) * 3) % len(pool)
                f.write(pool[idx].tobytes())
    total += off
json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, open(os.path.join(out, "model.safetensors.index.json"), "w"), indent=1)
json.dump({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": hidden, "intermediate_size": inter,
           "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv, "num_local_experts": experts,
           "num_experts_per_tok": 2, "vocab_size": vocab, "rms_norm_eps": 1e-5, "rope_theta": 1e6, "tie_word_embeddings": False,
           "sliding_window": None, "max_position_embeddings": 4096, "torch_dtype": "bfloat16"},
          open(os.path.join(out, "config.json"), "w"), indent=1)
print(f"{out}: {layers} layers x {experts} experts, {total / 1e9:.2f} GB in {len(shards)} shards")
