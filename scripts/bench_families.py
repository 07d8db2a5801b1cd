#!/usr/bin/env python3
"""Eval tokens/s of each 2026-family tiny model: `ingot eval --tokens-json` next to transformers, same tokens, same threads.

For every fixtures/families model (or the directories given): the same token ids (numpy's default generator with
--seed, uniform over the vocabulary) cut into non-overlapping windows of --ctx, each predicting its ctx-1 next tokens.
Ingot: `ingot eval DIR --tokens-json IDS --ctx C --threads T --json` (its own timer: the windows' forward passes and
scoring, no load or tokenization). transformers 5.17: fp32, the same windows timed the same way (model load excluded),
once with eager attention / eager experts (the implementation the parity fixtures use) and once with the library's
defaults (sdpa where the family has it). Each figure is the best of --repeat runs. Perplexities are printed side by
side as a parity check at a context longer than every sliding window.
usage: bench_families.py INGOT [--threads 2] [--ctx 256] [--tokens 8192] [--repeat 3] [DIR ...]
"""
import argparse
import glob
import json
import math
import os
import subprocess
import tempfile
import time

import numpy as np
import torch
import transformers

ap = argparse.ArgumentParser()
ap.add_argument("ingot")
ap.add_argument("dirs", nargs="*")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--ctx", type=int, default=256)
ap.add_argument("--tokens", type=int, default=8192)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
torch.set_num_threads(a.threads)
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
for d in a.dirs:
    if not os.path.isfile(os.path.join(d, "config.json")):
        ap.error(f"{d}: no config.json (give model directories)")
dirs = a.dirs or sorted(d for d in glob.glob("fixtures/families/*") if os.path.exists(os.path.join(d, "reference_logits.safetensors")))


def text_config(d):
    c = json.load(open(os.path.join(d, "config.json")))
    return c, c.get("text_config", c)


def model_class(d):
    """The checkpoint's own architecture (multimodal checkpoints: their ConditionalGeneration class, which keeps the
    lm_head, multipliers and soft-capping; a CausalLM class loaded from them may not map every weight)."""
    arch = (json.load(open(os.path.join(d, "config.json"))).get("architectures") or [None])[0]
    return getattr(transformers, arch) if arch and hasattr(transformers, arch) else transformers.AutoModelForCausalLM


def ingot_run(d, ids_file):
    best = None
    for _ in range(a.repeat):
        out = subprocess.run([a.ingot, "eval", d, "--tokens-json", ids_file, "--ctx", str(a.ctx), "--threads", str(a.threads), "--json"],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        if best is None or r["tokens_per_second"] > best["tokens_per_second"]:
            best = r
    return best["tokens_per_second"], best["perplexity"]


def transformers_run(d, windows, eager):
    kw = dict(dtype=torch.float32)
    if eager:
        kw.update(attn_implementation="eager", experts_implementation="eager")
    m = model_class(d).from_pretrained(d, **kw).eval()
    best_tps, ppl = 0.0, None
    for _ in range(a.repeat):
        nll, n = 0.0, 0
        t = time.perf_counter()
        with torch.inference_mode():
            for w in windows:
                logits = m(input_ids=w[None]).logits[0, :-1].float()
                nll += float(torch.nn.functional.cross_entropy(logits, w[1:], reduction="sum"))
                n += w.numel() - 1
        secs = time.perf_counter() - t
        best_tps, ppl = max(best_tps, windows.numel() / secs), math.exp(nll / n)
    impl = getattr(m.config, "_attn_implementation", "?")
    return best_tps, ppl, impl


print(f"eval tokens/s, {a.tokens // a.ctx} windows of {a.ctx} tokens, {a.threads} threads, best of {a.repeat}; "
      f"torch {torch.__version__}, transformers {transformers.__version__}")
print("| model | layers | Ingot tok/s | transformers eager tok/s | transformers default tok/s (attn) | Ingot ÷ best transformers "
      "| ppl Ingot | ppl transformers eager | rel. diff |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
with tempfile.TemporaryDirectory() as tmp:
    for d in dirs:
        c, tc = text_config(d)
        n = a.tokens // a.ctx * a.ctx
        ids = np.random.default_rng(a.seed).integers(0, tc["vocab_size"], size=n)
        ids_file = os.path.join(tmp, "ids.json")
        json.dump([int(i) for i in ids], open(ids_file, "w"))
        windows = torch.tensor(ids).view(-1, a.ctx)
        i_tps, i_ppl = ingot_run(d, ids_file)
        e_tps, e_ppl, _ = transformers_run(d, windows, eager=True)
        d_tps, _, impl = transformers_run(d, windows, eager=False)
        print(f"| {os.path.basename(d)} | {tc['num_hidden_layers']} | {i_tps:.0f} | {e_tps:.0f} | {d_tps:.0f} ({impl}) "
              f"| {i_tps / max(e_tps, d_tps):.2f}× | {i_ppl:.4f} | {e_ppl:.4f} | {abs(i_ppl - e_ppl) / e_ppl:.1e} |", flush=True)
