#!/usr/bin/env python3
"""fixtures/deepseekv3-yarn: the tiny DeepSeek-V3 peer fixture (same bf16 weights) with a YaRN rope config like
DeepSeek-V3's own (factor 4 over 32 original positions, mscale 1, mscale_all_dim 1, beta_fast 32, beta_slow 1),
and transformers' fp32 eager logits on rows 0..1 of data/eval_text.safetensors (128 positions, past the original
32, so the frequency blend and both mscales matter).
usage: make_yarn_fixture.py  (run from the repository root, in a venv with torch 2.13.0+cpu, transformers 5.17)
"""
import json
import os
import shutil

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

src, dst = "fixtures/peers/models/tiny-deepseekv3", "fixtures/deepseekv3-yarn"
os.makedirs(dst, exist_ok=True)
shutil.copy(f"{src}/model.safetensors", f"{dst}/model.safetensors")
cfg = json.load(open(f"{src}/config.json"))
cfg["rope_parameters"] = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 32,
                          "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}
cfg["max_position_embeddings"] = 128
json.dump(cfg, open(f"{dst}/config.json", "w"), indent=2)
ids = load_file("fixtures/peers/data/eval_text.safetensors")["input_ids"][:2]
model = AutoModelForCausalLM.from_pretrained(dst, dtype=torch.float32, attn_implementation="eager", experts_implementation="eager")
model.eval()
with torch.no_grad():
    logits = model(input_ids=ids).logits
save_file({"input_ids": ids.to(torch.int32).contiguous(), "logits": logits.contiguous()}, f"{dst}/reference_logits.safetensors")
print(dst, tuple(logits.shape), "rope_type", model.config.rope_parameters)
