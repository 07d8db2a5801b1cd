#!/usr/bin/env python3
"""Tokenizer encode throughput: HF `tokenizers` (one thread) next to Ingot's BPETokenizer, same files.

usage: python scripts/bench_tokenizer.py [--ingot .build/release/ingot] TOKENIZER.json TEXT [...more TEXT]

HF side: Tokenizer.from_file, best of 3 `encode(text, add_special_tokens=False)` on the whole file with
RAYON_NUM_THREADS=1 (a single encode call does not parallelize anyway). Ingot side: runs
`ingot bench tokenize TOKENIZER TEXT` (release build; best of 3 single-thread encode calls) when --ingot is
given. Both print the token count, so a mismatch between the two is visible. Figures are wall-clock and noisy on a
shared machine.
"""
import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402  (after the thread settings)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", help="path to a release build of the ingot executable")
    ap.add_argument("tokenizer")
    ap.add_argument("texts", nargs="+")
    a = ap.parse_args()
    tok = Tokenizer.from_file(a.tokenizer)
    for path in a.texts:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        size = len(text.encode("utf-8"))
        best, count = float("inf"), 0
        for _ in range(3):
            t0 = time.perf_counter()
            count = len(tok.encode(text, add_special_tokens=False).ids)
            best = min(best, time.perf_counter() - t0)
        print(f"tokenizers {__import__('tokenizers').__version__}: {count} tokens from {path} ({size} bytes) "
              f"in {best:.3f} s: {size / best / 1e6:.2f} MB/s (1 thread)")
        if a.ingot:
            r = subprocess.run([a.ingot, "bench", "tokenize", a.tokenizer, path], capture_output=True, text=True)
            sys.stdout.write("ingot: " + (r.stdout or r.stderr))


if __name__ == "__main__":
    main()
