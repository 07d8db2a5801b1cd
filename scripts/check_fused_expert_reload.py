#!/usr/bin/env python3
"""Whether transformers itself reloads Ingot's compressed-tensors exports of the fused-3-D-expert families, and with
which logits: fixtures/families/tiny-{gpt-oss,qwen3-next,qwen3.5-moe,gemma4}.

For each model and scheme (INT4 asymmetric and symmetric, FP8): `ingot export --to compressed-tensors`, then the
family's class `from_pretrained(export)` as a user calls it (fp32, eager, `output_loading_info`). transformers maps a
checkpoint's per-expert linears onto its fused `gate_up_proj` / `down_proj` only through a checkpoint conversion
mapping of the architecture (`transformers.conversion_mapping`), and its compressed-tensors quantizer decompresses the
per-expert weights on that path (`DecompressExperts`) before stacking them. Every export keeps Ingot's per-expert names
(`…experts.E.gate_proj.weight_packed`), as llm-compressor saves linearized experts and vLLM reads them.

When the model loads, its logits on 2 × 64 tokens are compared with the same class running Ingot's dequantized weights
(`ingot dequantize --weights-only`, per-expert linears fused back: gate rows first, gpt-oss gate/up interleaved and
transposed): with the fused experts rounded to the dtype the loader leaves them in (`DecompressExperts` returns the
scale dtype, bf16, even under `dtype=float32`; they are cast exactly to f32 to run) and the other linears in f32, as
compressed-tensors decompresses them; and all in f32. Its per-window NLLs (ctx 64) are also compared with
`ingot eval --json` of the export. FP8 schemes also quantize activations at run time (dynamic per token), so their
logits are not a weight-only comparison. A load that leaves parameters
missing (randomly initialised) or fails is reported with transformers' own words (its load report, on stderr, names
each conversion error).

Measured (transformers 5.17, compressed-tensors 0.19; table in the issue):
- gpt-oss, Gemma 4: transformers has no conversion mapping from per-expert linears to their fused experts, so it
  loads without error, reports the fused expert parameters MISSING (randomly initialised) and the per-expert tensors
  UNEXPECTED: its logits are unrelated to the export's. llm-compressor has no load mapping for these either
  (`ARCH_TO_2D_MAPPINGS`); its own outputs of them keep the same per-expert names. The weights are checked against
  transformers by check_family_exports.py, which decompresses them with compressed-tensors and fuses them by hand.
- Qwen3-Next, Qwen3.5-MoE (the qwen2_moe expert conversion): symmetric INT4 and FP8 load, the experts decompressed by
  `DecompressExperts`; asymmetric INT4 fails ("Asymmetric quant requires zero-point values", raised by
  compressed-tensors' pack-quantized decompressor: `DecompressExperts` passes it `weight_packed`, `weight_scale` and
  `weight_shape` but not the `weight_zero_point` every export has), a transformers limitation.

usage: scripts/check_fused_expert_reload.py INGOT_BINARY [MODEL ...]   (peer venv: torch, transformers 5.17,
compressed-tensors 0.19)
"""
import json
import re
import subprocess
import sys
import tempfile

import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

ingot = sys.argv[1]
MODELS = sys.argv[2:] or ["tiny-gpt-oss", "tiny-qwen3-next", "tiny-qwen3.5-moe", "tiny-gemma4"]
CTX = 64
work = tempfile.mkdtemp(prefix="ingot-reload-")
EXPERT = re.compile(r"(.*\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.(weight|bias)$")


def model_class(name):
    return transformers.Qwen3_5MoeForConditionalGeneration if name == "tiny-qwen3.5-moe" else AutoModelForCausalLM


def tokens(name):
    src = f"fixtures/families/{name}"
    if name.startswith("tiny-qwen3"):
        return torch.tensor(json.load(open(f"{src}/eval_tokens.json")))[:1024]
    return load_file("fixtures/peers/data/eval_text.safetensors")["input_ids"].reshape(-1)[:1024]


def reference(name, sd, weights):
    """The family's class from the original checkpoint with the export's unquantized tensors and `weights` (Ingot's
    dequantized linears) in place of the quantized ones, per-expert linears fused back into the 3-D parameters."""
    model = model_class(name).from_pretrained(f"fixtures/families/{name}", dtype=torch.float32, attn_implementation="eager",
                                              experts_implementation="eager").eval()
    state = model.state_dict()
    experts = {}
    for k, v in list(sd.items()) + list(weights.items()):
        m = EXPERT.match(k)
        if m:
            experts.setdefault(m.group(1), {})[(int(m.group(2)), m.group(3), m.group(4))] = v.float()
        elif k in state and not k.rsplit(".", 1)[1].startswith("weight_"):
            state[k] = v.float()
    for p, e in experts.items():
        gu, dn = state[p + ".gate_up_proj"], state[p + ".down_proj"]
        for i in range(gu.shape[0]):
            g, u, d = e[(i, "gate_proj", "weight")], e[(i, "up_proj", "weight")], e[(i, "down_proj", "weight")]
            if name == "tiny-gpt-oss":  # [E, H, 2I], gate at even columns; down [E, I, H]; biases likewise
                gu[i, :, 0::2], gu[i, :, 1::2], dn[i] = g.T, u.T, d.T
                state[p + ".gate_up_proj_bias"][i, 0::2] = e[(i, "gate_proj", "bias")]
                state[p + ".gate_up_proj_bias"][i, 1::2] = e[(i, "up_proj", "bias")]
                state[p + ".down_proj_bias"][i] = e[(i, "down_proj", "bias")]
            else:  # [E, 2I, H], gate rows first; down [E, H, I]
                inner = gu.shape[1] // 2
                gu[i, :inner], gu[i, inner:], dn[i] = g, u, d
    model.load_state_dict(state)
    return model


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids[:2 * CTX].reshape(2, CTX)).logits.double()


def window_nll(model, ids):
    out = []
    for s in range(0, ids.numel() - CTX + 1, CTX):
        w = ids[s:s + CTX].unsqueeze(0)
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=w).logits[0].double(), -1)
        out.append(-float(lp[:-1].gather(1, w[0, 1:].unsqueeze(1)).sum()))
    return torch.tensor(out, dtype=torch.float64)


def rel_l2(a, b):
    return float((a - b).norm() / b.norm())


rows = []
for name in MODELS:
    src = f"fixtures/families/{name}"
    ids = tokens(name)
    json.dump(ids.tolist(), open(f"{work}/{name}.ids.json", "w"))
    # groups that divide every input width compressed-tensors must describe (Qwen3.5-MoE's experts are 24 wide;
    # tiny-gemma4's per_layer_projection, 8 wide, is kept)
    group = ["--group-size", "8"] if name.startswith("tiny-qwen3") else ["--group-size", "32"]
    extra = ["--ignore", "re:.*per_layer_projection"] if name == "tiny-gemma4" else []
    for scheme in (["rtn-int4", *group], ["rtn-int4", *group, "--symmetric"], ["fp8-e4m3"]):
        ct = f"{work}/{name}-" + "-".join(scheme).replace("--", "")
        subprocess.run([ingot, "export", src, "--to", "compressed-tensors", "--scheme", *scheme, *(extra if scheme[0] != "fp8-e4m3" else []),
                        "-o", ct, "--quiet"], check=True)
        subprocess.run([ingot, "dequantize", ct, f"{ct}.dq.safetensors", "--weights-only", "--quiet"], check=True)
        sd, ours = load_file(f"{ct}/model.safetensors"), load_file(f"{ct}.dq.safetensors")
        modules = {k.rsplit(".", 1)[0] for k in sd if k.endswith((".weight_packed", ".weight_scale"))}
        exact = {k: v for k, v in ours.items() if k.rsplit(".", 1)[0] in modules}
        row = {"model": name, "scheme": " ".join(scheme), "loads": "", "missing": [], "expert_dtype": "", "rel_l2_loaded": None, "max_abs_loaded": None,
               "rel_l2_f32": None, "nll": None}
        try:
            loaded, info = model_class(name).from_pretrained(ct, dtype=torch.float32, attn_implementation="eager",
                                                              experts_implementation="eager", output_loading_info=True)
            # the fused experts keep the dtype DecompressExperts gives them (the scale dtype), whatever `dtype` asked
            # for: cast (exactly) to f32 like the rest
            row["expert_dtype"] = str(next(p.dtype for k, p in loaded.named_parameters() if k.endswith("experts.gate_up_proj")))
            with torch.no_grad():
                for k, p in loaded.named_parameters():
                    if ".experts." in k and p.dtype != torch.float32:
                        p.data = p.data.float()
            loaded = loaded.eval()
            row["missing"] = sorted(info["missing_keys"])
            row["loads"] = "yes" if not row["missing"] else f"with {len(row['missing'])} parameters missing (randomly initialised)"
        except Exception as e:  # transformers reports conversion failures as one RuntimeError after its load report
            row["loads"] = f"no: {type(e).__name__}: {str(e).splitlines()[0]}"
            rows.append(row)
            continue
        got = logits(loaded, ids)
        experts_dtype = getattr(torch, row["expert_dtype"].split(".")[1])
        want = logits(reference(name, sd, {k: v.to(experts_dtype) if ".experts." in k else v for k, v in exact.items()}), ids)
        row["rel_l2_loaded"], row["max_abs_loaded"] = rel_l2(got, want), float((got - want).abs().max())
        row["rel_l2_f32"] = rel_l2(got, logits(reference(name, sd, exact), ids))
        r = subprocess.run([ingot, "eval", ct, "--tokens-json", f"{work}/{name}.ids.json", "--ctx", str(CTX), "--json", "--quiet"],
                           check=True, capture_output=True, text=True)
        mine = torch.tensor([w["nll"] for w in json.loads(r.stdout)["windows"]], dtype=torch.float64)
        theirs = window_nll(loaded, ids)
        row["nll"] = float(((mine - theirs).abs() / theirs.abs()).max())
        rows.append(row)


def fmt(x):
    return "—" if x is None else f"{x:.2e}"


print("| model | scheme | `from_pretrained(export)` | fused experts loaded as | logits rel. L2 vs Ingot's weights (experts in the loaded dtype) | max abs | logits rel. L2 vs Ingot's f32 weights | window NLL max rel. diff vs `ingot eval` of the export |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['model']} | {r['scheme']} | {r['loads']} | {r['expert_dtype'] or '—'} | {fmt(r['rel_l2_loaded'])} | {fmt(r['max_abs_loaded'])} | {fmt(r['rel_l2_f32'])} | {fmt(r['nll'])} |")
for r in rows:
    if r["missing"]:
        print(f"{r['model']} {r['scheme']}: missing after load:", r["missing"][:4], "…" if len(r["missing"]) > 4 else "")
