#!/usr/bin/env python3
"""The compressed-tensors exports of fixtures/families/tiny-qwen3-next and tiny-qwen3.5-moe, checked with the peers'
own code.

For each model and scheme: `ingot quantize` + `ingot export --to compressed-tensors`, then
  1. every quantized module is decompressed by compressed-tensors' own decompressor and compared with Ingot's
     dequantized weights (`ingot dequantize --weights-only`), bit for bit in the scale dtype;
  2. transformers (fp32, eager) is given the export's unquantized tensors and the dequantized weights - per-expert
     linears stacked back into its fused experts (gate_up_proj [E, 2I, H] gate rows first, down_proj [E, H, I]) -
     once with Ingot's f32 dequantized weights and once with compressed-tensors' decompression, and its per-window
     NLLs over eval_tokens.json (ctx 128) are compared with `ingot eval --json` of the export.
transformers 5.17 loads the symmetric INT4 and FP8 exports itself (per-expert linears decompressed and stacked into
the fused experts) and fails on asymmetric INT4 (its `DecompressExperts` drops `weight_zero_point`): see
scripts/check_fused_expert_reload.py, which loads every fused-expert family's exports with `from_pretrained`.

usage: scripts/check_hybrid_exports.py INGOT_BINARY   (peer venv: torch, transformers 5.17, compressed-tensors 0.19)
"""
import json
import re
import subprocess
import sys
import tempfile

import torch
import transformers
from compressed_tensors.compressors import BaseCompressor
from compressed_tensors.quantization import QuantizationConfig
from safetensors.torch import load_file

ingot = sys.argv[1]
MODELS = {"tiny-qwen3-next": transformers.Qwen3NextForCausalLM,
          "tiny-qwen3.5-moe": transformers.Qwen3_5MoeForConditionalGeneration}
CTX = 128
work = tempfile.mkdtemp(prefix="ingot-hybrid-")
EXPERT = re.compile(r"(.*\.mlp\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")


def run(*args):
    subprocess.run([ingot, *args, "--quiet"], check=True)


def window_nll(model, ids):
    out = []
    for s in range(0, ids.numel() - CTX + 1, CTX):
        w = ids[s:s + CTX].unsqueeze(0)
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=w).logits[0].double(), -1)
        out.append(-float(lp[:-1].gather(1, w[0, 1:].unsqueeze(1)).sum()))
    return torch.tensor(out, dtype=torch.float64)


def transformers_model(cls, src, sd, weights):
    """`cls` (fp32, eager) with the export's unquantized tensors and `weights` for the quantized ones."""
    model = cls.from_pretrained(src, dtype=torch.float32, attn_implementation="eager", experts_implementation="eager").eval()
    state = model.state_dict()
    for k, v in sd.items():
        if k in state and not k.rsplit(".", 1)[1].startswith("weight_"):
            state[k] = v.float()
    experts = {}
    for k, v in weights.items():
        m = EXPERT.match(k)
        if m:
            experts.setdefault(m.group(1), {})[(int(m.group(2)), m.group(3))] = v.float()
        else:
            state[k] = v.float()
    for p, e in experts.items():
        gu, dn = state[p + ".gate_up_proj"], state[p + ".down_proj"]
        inner = gu.shape[1] // 2
        for i in range(gu.shape[0]):
            gu[i, :inner], gu[i, inner:], dn[i] = e[(i, "gate_proj")], e[(i, "up_proj")], e[(i, "down_proj")]
    model.load_state_dict(state)
    return model


rows = []
for name, cls in MODELS.items():
    src = f"fixtures/families/{name}"
    ids = torch.tensor(json.load(open(f"{src}/eval_tokens.json")))
    # group 8 divides every input width of both models (compressed-tensors refuses a last partial group, which Ingot
    # quantizes on its own: the shared expert of tiny-qwen3-next is 48 wide)
    for scheme in (["rtn-int4", "--group-size", "8"], ["rtn-int4", "--group-size", "8", "--symmetric"], ["fp8-e4m3"]):
        tag = name + "-" + "-".join(scheme).replace("--", "")
        q, ct = f"{work}/{tag}.ingot", f"{work}/{tag}"
        run("quantize", src, "--scheme", *scheme, "-o", q)
        run("export", q, "--to", "compressed-tensors", "--scheme", *scheme, "-o", ct)
        run("dequantize", ct, f"{ct}.dq.safetensors", "--weights-only")
        qcfg = json.load(open(f"{ct}/config.json"))["quantization_config"]
        qs = list(QuantizationConfig.model_validate(qcfg).config_groups.values())[0]
        comp = BaseCompressor.get_value_from_registry(qs.format or qcfg["format"])
        sd, ours = load_file(f"{ct}/model.safetensors"), load_file(f"{ct}.dq.safetensors")
        modules = sorted({k.rsplit(".", 1)[0] for k in sd if k.endswith((".weight_packed", ".weight_scale"))})
        weights, exact = {}, 0
        for m in modules:
            state = {k.rsplit(".", 1)[1]: v for k, v in sd.items() if k.rsplit(".", 1)[0] == m}
            w = comp.decompress(state, qs)["weight"]
            exact += int(torch.equal(w, ours[m + ".weight"].to(w.dtype)))
            weights[m + ".weight"] = w.float()
        theirs = window_nll(transformers_model(cls, src, sd, weights), ids)
        exact_w = window_nll(transformers_model(cls, src, sd, {k: v for k, v in ours.items() if k.rsplit(".", 1)[0] in modules}), ids)
        r = subprocess.run([ingot, "eval", ct, "--tokens-json", f"{src}/eval_tokens.json", "--ctx", str(CTX), "--json", "--quiet"],
                           check=True, capture_output=True, text=True)
        mine = torch.tensor([w["nll"] for w in json.loads(r.stdout)["windows"]], dtype=torch.float64)
        n = (CTX - 1) * len(mine)
        kept = sorted({k.rsplit(".", 1)[0] for k in sd} - set(modules))
        rows.append({"model": name, "scheme": " ".join(scheme), "format": qcfg["format"], "modules": len(modules), "bit_exact": exact,
                     "exact": float(((mine - exact_w).abs() / exact_w.abs()).max()),
                     "decompressed": float(((mine - theirs).abs() / theirs.abs()).max()),
                     "ppl_exact": float(torch.exp(exact_w.sum() / n)), "ppl_ingot": float(torch.exp(mine.sum() / n)),
                     "ppl_decompressed": float(torch.exp(theirs.sum() / n)), "ignore": qcfg.get("ignore"), "kept": kept})
print("| model | scheme | format | modules decompressed by compressed-tensors | bit-exact vs Ingot | window NLL max rel. diff, transformers on Ingot's f32 dequantized weights vs `ingot eval` of the export | ppl transformers (Ingot weights) | ppl Ingot | window NLL max rel. diff, transformers on compressed-tensors' decompression | ppl transformers (decompression) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['model']} | {r['scheme']} | {r['format']} | {r['modules']} | {r['bit_exact']} | {r['exact']:.2e} | {r['ppl_exact']:.6f} | {r['ppl_ingot']:.6f} | {r['decompressed']:.2e} | {r['ppl_decompressed']:.6f} |")
for r in rows[::3]:
    print(r["model"], "quantization_config.ignore:", r["ignore"])
    print(r["model"], "kept unquantized (tensor owners):", [k for k in r["kept"] if "layers.0." in k or "layers.1." in k or "layers" not in k])
