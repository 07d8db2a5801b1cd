#!/usr/bin/env python3
"""llm-compressor's oneshot AWQ on CPU, for `scripts/bench-awq`: AWQModifier() defaults + W4A16_ASYM group G
(ignore lm_head and MoE routers, as its examples do), calibration = every row of an input_ids safetensors file
(batch 1, no shuffle). Prints one JSON line: oneshot wall time, peak RSS, per-mapping losses from its log.
With MODIFIER `gptq`: GPTQModifier() defaults (block 128, dampening 0.01, static act-order) with the same scheme
instead of AWQ + QuantizationModifier.
usage: bench_awq_llmc.py MODEL CALIB.safetensors GROUP OUT_DIR [awq|gptq]
"""
import json
import os
import re
import resource
import sys
import time

import torch
from datasets import Dataset
from loguru import logger
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures", "peers", "scripts"))
from compressed_tensors.quantization import preset_name_to_scheme  # noqa: E402
from llmcompressor import oneshot  # noqa: E402
from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier  # noqa: E402
from llmcompressor.modifiers.transform.awq import AWQModifier  # noqa: E402

try:  # no-op pin_memory without an accelerator (see ../shared/fixtures/peers/scripts/cpu_patches.py)
    from llmcompressor.pipelines.cache import IntermediatesCache
    if not torch.accelerator.is_available() and hasattr(IntermediatesCache, "pin_memory"):
        IntermediatesCache.pin_memory = lambda self, *a, **k: None
except Exception:
    pass

model_dir, calib, group, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
modifier = sys.argv[5] if len(sys.argv) > 5 else "awq"
if modifier not in ("awq", "gptq"):
    sys.exit(f"error: MODIFIER must be awq or gptq, not {modifier!r}")
losses = []
logger.add(lambda m: losses.append(m.record["message"]), level="DEBUG", filter=lambda r: "grid search" in r["message"] or "best" in r["message"].lower())
cfg = AutoConfig.from_pretrained(model_dir)
# On CPU the model runs in float32 (as Ingot computes): x86 has no native fp16/bf16 matmul, and torch emulates it
# about 10x slower. With an accelerator, the checkpoint dtype.
dtype = "auto" if torch.accelerator.is_available() else torch.float32
is_moe = any(getattr(cfg, k, None) for k in ("num_local_experts", "num_experts", "n_routed_experts"))
if is_moe:
    from llmcompressor.modeling.moe.linearize import load_quantizable_moe
    with load_quantizable_moe():
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
else:
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
sch = preset_name_to_scheme("W4A16_ASYM", ["Linear"])
sch.weights.group_size = group
ignore = ["lm_head", "re:.*mlp.gate$", "re:.*block_sparse_moe.gate$"]
if modifier == "gptq":
    recipe = [GPTQModifier(config_groups={"group_0": sch}, ignore=ignore)]
else:
    recipe = [AWQModifier(), QuantizationModifier(config_groups={"group_0": sch}, ignore=ignore)]
ids = load_file(calib)["input_ids"]
ds = Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": torch.ones_like(ids).tolist()})
tok_dir = model_dir if os.path.exists(os.path.join(model_dir, "tokenizer.json")) else os.path.join(model_dir, "..", "tokenizer")
t = time.time()
oneshot(model=model, recipe=recipe, dataset=ds, num_calibration_samples=ids.shape[0], max_seq_length=ids.shape[1],
        shuffle_calibration_samples=False, batch_size=1, processor=AutoTokenizer.from_pretrained(tok_dir))
secs = time.time() - t
model.save_pretrained(out, save_compressed=True)
print(json.dumps({"tool": "llm-compressor", "modifier": modifier, "oneshot_s": round(secs, 2), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "threads": torch.get_num_threads(), "log_lines": len(losses)}))
