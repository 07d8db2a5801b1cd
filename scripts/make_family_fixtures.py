#!/usr/bin/env python3
"""fixtures/families/: tiny random models of the 2025-26 families, made by transformers 5.17, with transformers' fp32
eager logits and perplexity, so Ingot's forward pass is checked against them (Tests/IngotForwardTests).

For each family, every layer type appears at least once and sliding windows are shorter than the test sequence.
Weights are bf16 (as released checkpoints are), random-init after torch.manual_seed(SEED), with the deliberate
changes listed in each model's reference.json ("init_changes") so that a reimplementation cannot pass by ignoring a
parameter (norm weights 1 + N(0, 0.1²), nonzero biases and sinks, expert weights large enough to hit the clamp).

  tiny-gpt-oss/        GptOssForCausalLM: sliding + full attention with sinks and biases, MoE with router bias,
                       expert biases and the clamped SwiGLU; expert weights are exactly MXFP4-representable
  tiny-gpt-oss-mxfp4/  the same model with its experts stored as MXFP4 (`*_blocks`, `*_scales`, quant_method mxfp4),
                       as openai/gpt-oss checkpoints are; same logits (checked by loading it with
                       Mxfp4Config(dequantize=True))
  tiny-muse/           MuseGlimmerForConditionalGeneration (the only class with the lm_head, output_multiplier and the
                       final soft-capping) with a one-layer vision tower: sliding and full layers, each with and
                       without rotary (layer_rope_theta 0), gated attention, scaleless QK-norm times qk_scale_factor,
                       centered (1 + w) sandwich norms with post_norm_eps, normed embeddings
  tiny-gemma4/         Gemma4ForCausalLM: sliding (default rope) and full (proportional rope, own head_dim and kv heads,
                       k = v) layers, kv sharing (the last two layers) with double-wide MLPs, per-layer embeddings, an
                       MoE block beside every MLP, layer_scalar, final logit soft-capping
  tiny-gemma4-mm/      the same decoder as Gemma4ForConditionalGeneration (model_type gemma4: text_config,
                       model.language_model.*, tied lm_head by the outer config) with a one-layer vision tower; same
                       logits (checked)

Each directory holds config.json, model.safetensors, reference_logits.safetensors {input_ids int32 [1, N],
logits f32 [1, N, vocab]} (row 0 of fixtures/peers/data/eval_text.safetensors, first N tokens) and reference.json
with the perplexity transformers computes over all 16 rows of eval_text flattened (2048 tokens) in non-overlapping
windows of CTX tokens, each scoring its CTX - 1 next-token predictions (as `ingot eval --ctx CTX` does).

usage: make_family_fixtures.py [FAMILY...]   (from the repository root, in the peer venv: torch 2.13.0+cpu, transformers 5.17.0)
"""
import json
import math
import os
import shutil

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

SEED = 1234
N = 64      # positions of the stored logits (sliding windows are 8: every window type is exercised)
CTX = 64    # perplexity window
OUT = "fixtures/families"
IDS = load_file("fixtures/peers/data/eval_text.safetensors")["input_ids"]
KW = dict(dtype=torch.float32, attn_implementation="eager", experts_implementation="eager")
COMMON = dict(vocab_size=2048, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
              max_position_embeddings=512, bos_token_id=0, eos_token_id=1, pad_token_id=2)


def forward_logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def perplexity(model):
    flat = IDS.reshape(-1)
    nll, count = 0.0, 0
    for s in range(0, flat.numel() - CTX + 1, CTX):
        w = flat[s:s + CTX].unsqueeze(0)
        lp = torch.log_softmax(forward_logits(model, w)[0].double(), dim=-1)
        nll -= float(lp[:-1].gather(1, w[0, 1:].unsqueeze(1)).sum())
        count += CTX - 1
    return math.exp(nll / count), count


def write_reference(d, model_class, changes, extra=None):
    model = model_class.from_pretrained(d, **KW).eval() if model_class else AutoModelForCausalLM.from_pretrained(d, **KW).eval()
    ids = IDS[:1, :N]
    logits = forward_logits(model, ids)
    save_file({"input_ids": ids.to(torch.int32).contiguous(), "logits": logits.contiguous()}, f"{d}/reference_logits.safetensors")
    ppl, predictions = perplexity(model)
    ref = {"what": "transformers fp32 eager logits and perplexity of this checkpoint",
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
           "model_class": type(model).__name__, "logits_inputs": f"row 0 of eval_text, first {N} tokens",
           "perplexity": {"ctx": CTX, "tokens": "all 16 rows of fixtures/peers/data/eval_text.safetensors, flattened",
                          "predictions": predictions, "value": ppl},
           "init_changes": changes}
    ref.update(extra or {})
    json.dump(ref, open(f"{d}/reference.json", "w"), indent=1)
    print(d, type(model).__name__, "ppl", ppl)
    return logits


def randomize(model, norm_std=0.1):
    """Norm weights 1 + N(0, norm_std²); every other all-zero parameter N(0, initializer_range²)."""
    changes = []
    std = model.config.get_text_config().initializer_range
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n and n.endswith("weight"):
                p.copy_(1.0 + norm_std * torch.randn(p.shape))
            elif float(p.detach().float().abs().max()) == 0.0:
                torch.nn.init.normal_(p, std=std)
                changes.append(f"{n}: all-zero -> N(0,{std}^2)")
    changes.append(f"all *norm*.weight -> 1 + N(0,{norm_std}^2)")
    return changes


def save(model, d):
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d)
    if os.path.exists(f"{d}/generation_config.json"):
        os.remove(f"{d}/generation_config.json")


FP4 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def mxfp4_quantize(w):
    """w [E, out, in] -> (blocks u8 [E, out, in/32, 16], scales u8 [E, out, in/32], exact dequantized values)."""
    E, O, I = w.shape
    g = w.float().reshape(E, O, I // 32, 32)
    amax = g.abs().amax(-1, keepdim=True).clamp(min=2.0 ** -100)
    exp = torch.ceil(torch.log2(amax / 6.0))
    q = g / torch.exp2(exp)
    idx = (q.abs().unsqueeze(-1) - FP4).abs().argmin(-1)
    code = idx + 8 * (q < 0).to(idx.dtype) * (idx > 0).to(idx.dtype)
    deq = FP4[idx] * torch.sign(q) * torch.exp2(exp)
    code = code.to(torch.uint8).reshape(E, O, I // 32, 16, 2)
    blocks = code[..., 0] | (code[..., 1] << 4)
    scales = (exp.squeeze(-1) + 127).to(torch.uint8)
    return blocks.contiguous(), scales.contiguous(), deq.reshape(E, O, I)


def gpt_oss():
    d = f"{OUT}/tiny-gpt-oss"
    cfg = transformers.GptOssConfig(num_hidden_layers=3, intermediate_size=32, num_local_experts=4, num_experts_per_tok=2,
                                    sliding_window=8, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                                    tie_word_embeddings=False, **COMMON)
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
    changes = randomize(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("sinks"):
                p.copy_(torch.randn(p.shape))
            elif n.endswith("_bias") or n.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape))
            elif n.endswith("experts.gate_up_proj") or n.endswith("experts.down_proj"):
                # large enough that the clamp (limit 7) is hit; then rounded to MXFP4 so both fixtures hold one model
                w = (0.5 if "gate_up" in n else 0.2) * torch.randn(p.shape)
                _, _, deq = mxfp4_quantize(w.transpose(1, 2))
                p.copy_(deq.transpose(1, 2))
    changes += ["self_attn.sinks -> N(0,1)", "every bias -> N(0,0.1^2)",
                "experts.gate_up_proj -> N(0,0.5^2), experts.down_proj -> N(0,0.2^2), both rounded to MXFP4 values"]
    save(model, d)
    logits = write_reference(d, None, changes)

    q = f"{OUT}/tiny-gpt-oss-mxfp4"
    os.makedirs(q, exist_ok=True)
    sd = load_file(f"{d}/model.safetensors")
    out = {}
    for k, v in sd.items():
        if k.endswith("experts.gate_up_proj") or k.endswith("experts.down_proj"):
            blocks, scales, deq = mxfp4_quantize(v.float().transpose(1, 2))
            assert torch.equal(deq.transpose(1, 2).to(v.dtype), v), k
            out[k + "_blocks"], out[k + "_scales"] = blocks, scales
        else:
            out[k] = v
    save_file(out, f"{q}/model.safetensors", metadata={"format": "pt"})
    c = json.load(open(f"{d}/config.json"))
    c["quantization_config"] = {"quant_method": "mxfp4",
                                "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                           "model.embed_tokens", "lm_head"]}
    json.dump(c, open(f"{q}/config.json", "w"), indent=2)
    m = AutoModelForCausalLM.from_pretrained(q, quantization_config=transformers.Mxfp4Config(dequantize=True), **KW).float().eval()
    rel = float((forward_logits(m, IDS[:1, :N]) - logits).norm() / logits.norm())
    print(q, "transformers' MXFP4 dequantized logits vs tiny-gpt-oss: rel L2", rel)
    assert rel < 1e-6, rel
    shutil.copy(f"{d}/reference.json", f"{q}/reference.json")


def muse():
    d = f"{OUT}/tiny-muse"
    text = dict(COMMON, num_hidden_layers=4, intermediate_size=96, sliding_window=8, tie_word_embeddings=False,
                layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
                layer_rope_theta=[10000.0, 10000.0, 0, 0], qk_scale_factor=2.5, output_multiplier=0.75,
                final_logit_softcapping=4.0, post_norm_eps=1e-6, rms_norm_eps=1e-5)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, pos_emb_height=4, pos_emb_width=4)
    cfg = transformers.MuseGlimmerConfig(text_config=text, vision_config=vision, out_hidden_size=128, projector_hidden_size=64)
    torch.manual_seed(SEED)
    model = transformers.MuseGlimmerForConditionalGeneration(cfg).to(torch.bfloat16).eval()
    changes = randomize(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("embed_tokens.weight") or n.endswith("lm_head.weight"):
                p.copy_(torch.randn(p.shape))  # logits large enough that the soft-cap (4) bends them
    changes.append("embed_tokens, lm_head -> N(0,1)")
    save(model, d)
    write_reference(d, transformers.MuseGlimmerForConditionalGeneration, changes)


def gemma4():
    d = f"{OUT}/tiny-gemma4"
    cfg = transformers.Gemma4TextConfig(
        **dict(COMMON, pad_token_id=0), num_hidden_layers=6, intermediate_size=96, sliding_window=8,
        layer_types=["sliding_attention", "full_attention"] * 3, global_head_dim=32, num_global_key_value_heads=1,
        attention_k_eq_v=True, num_kv_shared_layers=2, use_double_wide_mlp=True, enable_moe_block=True, num_experts=4,
        top_k_experts=2, moe_intermediate_size=32, hidden_size_per_layer_input=8, vocab_size_per_layer_input=2048,
        final_logit_softcapping=5.0, tie_word_embeddings=True)
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
    changes = randomize(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("router.scale") or n.endswith("router.per_expert_scale"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape))
        for n, b in model.named_buffers():
            if n.endswith("layer_scalar"):
                b.copy_(0.5 + torch.rand(b.shape))
    changes += ["router.scale, router.per_expert_scale -> 1 + N(0,0.3^2)", "layer_scalar -> U(0.5,1.5)"]
    save(model, d)
    write_reference(d, None, changes)


def gemma4_mm():
    src, d = f"{OUT}/tiny-gemma4", f"{OUT}/tiny-gemma4-mm"
    text = json.load(open(f"{src}/config.json"))
    for k in ["architectures", "dtype", "transformers_version"]:
        text.pop(k, None)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, head_dim=16,
                  position_embedding_size=64)
    torch.manual_seed(SEED)
    model = transformers.Gemma4ForConditionalGeneration(transformers.Gemma4Config(text_config=text, vision_config=vision)).eval()
    state = model.state_dict()
    for k, v in load_file(f"{src}/model.safetensors").items():
        state[k.replace("model.", "model.language_model.", 1)] = v.float()
    model.load_state_dict(state)
    save(model.to(torch.bfloat16), d)
    m = transformers.Gemma4ForConditionalGeneration.from_pretrained(d, **KW).eval()
    ref = load_file(f"{src}/reference_logits.safetensors")
    rel = float((forward_logits(m, ref["input_ids"].long()) - ref["logits"]).norm() / ref["logits"].norm())
    print(d, "Gemma4ForConditionalGeneration vs tiny-gemma4's Gemma4ForCausalLM logits: rel L2", rel)
    assert rel < 1e-6, rel
    shutil.copy(f"{src}/reference.json", f"{d}/reference.json")
    shutil.copy(f"{src}/reference_logits.safetensors", f"{d}/reference_logits.safetensors")


FAMILIES = {"gpt-oss": gpt_oss, "muse": muse, "gemma4": gemma4, "gemma4-mm": gemma4_mm}

if __name__ == "__main__":
    import sys
    os.makedirs(OUT, exist_ok=True)
    for f in sys.argv[1:] or FAMILIES:
        FAMILIES[f]()
