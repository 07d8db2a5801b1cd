#!/usr/bin/env python3
"""Calibration blocks exactly as `ingot calibrate` builds them from text, for peers to use the same tokens.

Text -> HF `tokenizers` ids (no special tokens; Ingot's tokenizer gives identical ids) -> consecutive blocks of
--seq-len -> Fisher-Yates shuffle driven by SplitMix64(--seed) (the generator Ingot uses) -> first --samples.
`--consecutive` skips the shuffle: the first --samples blocks of the text, as llm-compressor's oneshot draws them
(`shuffle_calibration_samples=False` on a text dataset cut in order).
Writes safetensors `input_ids` int64 [samples, seq_len].
usage: make_calib_blocks.py TOKENIZER.json TEXT OUT.safetensors [--samples 128] [--seq-len 512] [--seed 42 | --consecutive]
"""
import argparse

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer

M = (1 << 64) - 1


def splitmix64(seed):
    s = seed
    while True:
        s = (s + 0x9E3779B97F4A7C15) & M
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        yield z ^ (z >> 31)


ap = argparse.ArgumentParser()
ap.add_argument("tokenizer"); ap.add_argument("text"); ap.add_argument("out")
ap.add_argument("--samples", type=int, default=128); ap.add_argument("--seq-len", type=int, default=512)
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--consecutive", action="store_true")
a = ap.parse_args()
ids = Tokenizer.from_file(a.tokenizer).encode(open(a.text, encoding="utf-8").read(), add_special_tokens=False).ids
n = len(ids) // a.seq_len
order = list(range(n))
rng = splitmix64(a.seed)
for i in (range(0) if a.consecutive else range(n - 1, 0, -1)):
    j = next(rng) % (i + 1)
    order[i], order[j] = order[j], order[i]
blocks = np.array([ids[b * a.seq_len:(b + 1) * a.seq_len] for b in order[:a.samples]], dtype=np.int64)
save_file({"input_ids": blocks}, a.out)
print(f"{a.out}: {blocks.shape[0]} blocks of {a.seq_len} tokens from {len(ids)} tokens")
