#!/usr/bin/env python3
"""A synthetic MoE checkpoint of a given size, for memory benchmarks (larger than the memory a run is allowed): bf16
safetensors in ~2 GB shards with model.safetensors.index.json, config.json, Gaussian weights (std 0.02; norms 1).
Default shape per layer (Mixtral-style): hidden 2048, 16 experts of intermediate 1408 (top-2), GQA attention.
--experts N: N experts per layer. --deepseek-v3: DeepSeek-V3's layer at its real widths (hidden 7168, MLA with q
rank 1536 / kv rank 512 and 128 heads, one shared expert and N routed experts of intermediate 2048, sigmoid routing
over 8 groups, top-8; N a multiple of 8, default 256), every layer MoE, vocabulary 4096.
SIZE_GB sets the number of layers (at least one).
usage: make_synthetic_moe.py OUT_DIR SIZE_GB [--experts N] [--deepseek-v3]
"""
import argparse
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


ap = argparse.ArgumentParser(usage="make_synthetic_moe.py OUT_DIR SIZE_GB [--experts N] [--deepseek-v3]")
ap.add_argument("out"); ap.add_argument("size_gb")
ap.add_argument("--experts", type=int); ap.add_argument("--deepseek-v3", action="store_true")
a = ap.parse_args()
out, gb, dsv3 = a.out, size_gb(a.size_gb), a.deepseek_v3
experts = a.experts if a.experts is not None else (256 if dsv3 else 16)
if experts < 1 or (dsv3 and (experts % 8 or experts < 16)):
    sys.exit(f"make_synthetic_moe.py: --experts must be positive{' and a multiple of 8, at least 16, with --deepseek-v3' if dsv3 else ''}, got {experts}")
vocab = 4096
if dsv3:
    hidden, inter, heads, q_rank, kv_rank, nope, rope, v_dim = 7168, 2048, 128, 1536, 512, 128, 64, 128
    def layer_tensors(p):
        t = [(p + "input_layernorm.weight", (hidden,)), (p + "post_attention_layernorm.weight", (hidden,)),
             (p + "self_attn.q_a_proj.weight", (q_rank, hidden)), (p + "self_attn.q_a_layernorm.weight", (q_rank,)),
             (p + "self_attn.q_b_proj.weight", (heads * (nope + rope), q_rank)),
             (p + "self_attn.kv_a_proj_with_mqa.weight", (kv_rank + rope, hidden)), (p + "self_attn.kv_a_layernorm.weight", (kv_rank,)),
             (p + "self_attn.kv_b_proj.weight", (heads * (nope + v_dim), kv_rank)), (p + "self_attn.o_proj.weight", (hidden, heads * v_dim)),
             (p + "mlp.gate.weight", (experts, hidden)), (p + "mlp.gate.e_score_correction_bias", (experts,))]
        for q in [p + f"mlp.experts.{e}." for e in range(experts)] + [p + "mlp.shared_experts."]:
            t += [(q + "gate_proj.weight", (inter, hidden)), (q + "up_proj.weight", (inter, hidden)), (q + "down_proj.weight", (hidden, inter))]
        return t
else:
    hidden, inter, heads, kv = 2048, 1408, 16, 4
    hd = hidden // heads
    def layer_tensors(p):
        t = [(p + "input_layernorm.weight", (hidden,)), (p + "post_attention_layernorm.weight", (hidden,)),
             (p + "self_attn.q_proj.weight", (hidden, hidden)), (p + "self_attn.k_proj.weight", (kv * hd, hidden)),
             (p + "self_attn.v_proj.weight", (kv * hd, hidden)), (p + "self_attn.o_proj.weight", (hidden, hidden)),
             (p + "block_sparse_moe.gate.weight", (experts, hidden))]
        for e in range(experts):
            q = p + f"block_sparse_moe.experts.{e}."
            t += [(q + "w1.weight", (inter, hidden)), (q + "w3.weight", (inter, hidden)), (q + "w2.weight", (hidden, inter))]
        return t
per_layer = 2 * sum(int(np.prod(s)) for _, s in layer_tensors("x."))
layers = max(1, int(gb * 1e9 // per_layer))
os.makedirs(out, exist_ok=True)
tensors = [("model.embed_tokens.weight", (vocab, hidden)), ("lm_head.weight", (vocab, hidden)), ("model.norm.weight", (hidden,))]
for l in range(layers):
    tensors += layer_tensors(f"model.layers.{l}.")
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
if dsv3:
    config = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": hidden, "intermediate_size": 18432,
              "moe_intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": heads,
              "n_routed_experts": experts, "n_shared_experts": 1, "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4,
              "norm_topk_prob": True, "routed_scaling_factor": 2.5, "first_k_dense_replace": 0, "q_lora_rank": q_rank,
              "kv_lora_rank": kv_rank, "qk_nope_head_dim": nope, "qk_rope_head_dim": rope, "v_head_dim": v_dim, "rope_interleave": True,
              "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}, "vocab_size": vocab, "rms_norm_eps": 1e-6,
              "tie_word_embeddings": False, "max_position_embeddings": 4096, "attention_bias": False, "hidden_act": "silu",
              "torch_dtype": "bfloat16"}
else:
    config = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": hidden, "intermediate_size": inter,
              "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv, "num_local_experts": experts,
              "num_experts_per_tok": 2, "vocab_size": vocab, "rms_norm_eps": 1e-5, "rope_theta": 1e6, "tie_word_embeddings": False,
              "sliding_window": None, "max_position_embeddings": 4096, "torch_dtype": "bfloat16"}
json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=1)
print(f"{out}: {layers} layers x {experts} experts, {total / 1e9:.2f} GB in {len(shards)} shards")
