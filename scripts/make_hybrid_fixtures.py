#!/usr/bin/env python3
"""fixtures/families/tiny-qwen3-next and tiny-qwen3.5-moe: tiny random hybrid models made by transformers 5.17, with
its fp32 eager logits and perplexity as references.

  tiny-qwen3-next   Qwen3NextForCausalLM: 4 layers [linear, full, linear, linear] (layer 1 a dense MLP via
                    mlp_only_layers, the others MoE: 8 experts top-2, norm_topk_prob false, shared expert 48 wide
                    with its sigmoid gate), Gated DeltaNet with 2 key heads × 16 and 4 value heads × 8 (fused
                    in_proj_qkvz / in_proj_ba), conv kernel 4, gated attention 4 heads / 2 kv heads × 16, partial
                    rotary 0.5.
  tiny-qwen3.5-moe  Qwen3_5MoeForConditionalGeneration (text decoder under model.language_model.*, a 1-block vision
                    tower under model.visual.*): 4 layers [full, linear, linear, full], Gated DeltaNet with 2 key
                    heads × 8 and 6 value heads × 12 (split in_proj_qkv / z / b / a), conv kernel 3, 6 experts top-3 +
                    gated shared expert, partial rotary 0.25 with mrope sections (text positions: plain rope).

Weights bf16 (vocab 2048 and the tokenizer of fixtures/peers/models/tokenizer), seeded. Parameters transformers
initialises to constants are randomised so a reimplementation cannot pass by ignoring them: zero-centred norms
N(0, 0.1²), the gated norms 1 + N(0, 0.1²), dt_bias N(1, 0.5²); A_log keeps its log U(0.01, 16) init.
References (fp32, attn_implementation="eager", experts_implementation="eager"):
  reference_logits.safetensors  input_ids [2, 80] = rows 0..1 of peers/data/eval_text.safetensors cut to 80 tokens
                                 (past one 64-token chunk of the chunked delta rule, not a multiple of it), logits
  eval_tokens.json               rows 2..5 of the same file, concatenated (512 ids)
  reference.json                 perplexity of eval_tokens.json in non-overlapping windows of 128 (each scoring its
                                 127 next tokens, log-softmax in f64: Ingot's `eval --ctx 128` protocol)
usage: scripts/make_hybrid_fixtures.py  (from the repository root, with .cache/venv-peers/bin/python)
"""
import json
import math
import os
import shutil

import torch
import transformers
from safetensors.torch import load_file, save_file

SEED = 1234
DTYPE = torch.bfloat16
TOK = "fixtures/peers/models/tokenizer"
COMMON = dict(vocab_size=2048, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
              head_dim=16, max_position_embeddings=512, tie_word_embeddings=False, rms_norm_eps=1e-6,
              bos_token_id=0, eos_token_id=1, pad_token_id=2)


def qwen3_next():
    cfg = transformers.Qwen3NextConfig(
        **COMMON, layer_types=["linear_attention", "full_attention", "linear_attention", "linear_attention"],
        linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16, linear_value_head_dim=8,
        linear_conv_kernel_dim=4, intermediate_size=96, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32,
        shared_expert_intermediate_size=48, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[1],
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})
    return transformers.Qwen3NextForCausalLM(cfg)


def qwen3_5_moe():
    text = dict(COMMON, layer_types=["full_attention", "linear_attention", "linear_attention", "full_attention"],
                linear_num_key_heads=2, linear_num_value_heads=6, linear_key_head_dim=8, linear_value_head_dim=12,
                linear_conv_kernel_dim=3, num_experts=6, num_experts_per_tok=3, moe_intermediate_size=24,
                shared_expert_intermediate_size=40,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "partial_rotary_factor": 0.25,
                                 "mrope_section": [1, 1, 0], "mrope_interleaved": True})
    del text["tie_word_embeddings"]
    vision = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, patch_size=4, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=16)
    cfg = transformers.Qwen3_5MoeConfig(text_config=text, vision_config=vision, tie_word_embeddings=False)
    return transformers.Qwen3_5MoeForConditionalGeneration(cfg)


def randomise(model):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.startswith("model.visual"):
                continue
            if n.endswith("linear_attn.norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif "norm" in n:
                p.copy_(0.1 * torch.randn_like(p))  # zero-centred: the forward pass multiplies by 1 + w
            elif n.endswith("dt_bias"):
                p.copy_(1 + 0.5 * torch.randn_like(p))
            elif p.dim() >= 2 and float(p.abs().max()) == 0:
                torch.nn.init.normal_(p, std=0.02)


def perplexity(logits, ids):
    lp = torch.log_softmax(logits.double(), dim=-1)
    return -lp[:-1].gather(1, ids[1:, None]).sum().item(), ids.numel() - 1


def make(name, build):
    out = os.path.join("fixtures", name)
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(SEED)
    model = build().to(DTYPE).eval()
    randomise(model)
    model.save_pretrained(out)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOK, f), out)
    cls = type(model)
    ref = cls.from_pretrained(out, dtype=torch.float32, attn_implementation="eager", experts_implementation="eager").eval()
    data = load_file("fixtures/peers/data/eval_text.safetensors")["input_ids"]
    ids = data[:2, :80].contiguous()
    with torch.no_grad():
        logits = ref(input_ids=ids).logits.float().contiguous()
        evals = data[2:6].reshape(-1)
        ctx, nll, count = 128, 0.0, 0
        for s in range(0, evals.numel() - ctx + 1, ctx):
            w = evals[s:s + ctx]
            a, b = perplexity(ref(input_ids=w[None]).logits[0].float(), w)
            nll += a
            count += b
    save_file({"input_ids": ids.to(torch.int32), "logits": logits}, os.path.join(out, "reference_logits.safetensors"))
    json.dump([int(t) for t in evals], open(os.path.join(out, "eval_tokens.json"), "w"))
    json.dump({"perplexity": math.exp(nll / count), "ctx": ctx, "predictions": count, "tokens": "eval_tokens.json",
               "torch": torch.__version__, "transformers": transformers.__version__},
              open(os.path.join(out, "reference.json"), "w"), indent=2)
    print(out, tuple(logits.shape), "ppl", math.exp(nll / count))


make("families/tiny-qwen3-next", qwen3_next)
make("families/tiny-qwen3.5-moe", qwen3_5_moe)
