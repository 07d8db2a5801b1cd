#!/usr/bin/env python3
"""The peers' side of `ingot bench suite`: the same work, on the same inputs, with the same thread count, done once by
the Python / C tools people use for it. Prints a JSON array of rows with the fields Ingot's rows have.

Each row runs in a fresh child (`peers_bench.py --row ROW --tool TOOL ...`) so its peak RSS (`wait4` ru_maxrss) is
its own; the child times only the work (no interpreter start, imports or untimed setup). When the work is an external
program (zstd, llama-quantize, llama-perplexity) the row's peak RSS is that program's, not the Python wrapper's
(wait4 reports max(its own, the small wrapper's at spawn time)).
Every row reads its input from the page cache (the parent reads the model once first); Ingot's rows do too.
Every row that writes a file fsyncs it inside its timed region, as Ingot's crash-safe writes do.

usage: peers_bench.py --model DIR --text FILE [--eval-tokens 2048] [--ctx 512] [--long-ctx 2048] [--threads 2]
                      [--moe-model DIR --moe-text FILE] [--moe-ctx 256] [--moe-tokens 2048]
                      [--synthetic-moe DIR --synthetic-tokens IDS.json] [--awq-model DIR]
                      [--calib-text FILE] [--calib-samples 32] [--calib-seq-len 256] [--skip ROW]... [--llama-cpp BIN]
                      [--work DIR]
       peers_bench.py --table ingot.json peers.json     (the markdown table scripts/compare-peers prints)
Run it with a python that has torch, numpy, safetensors, tokenizers, zipnn, transformers and llmcompressor.
"""
import argparse
import contextlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = ["load", "convert", "pack", "unpack", "decode", "rtn-int4", "fp8-e4m3", "forward", "forward-long", "forward-moe",
        "forward-moe-synthetic", "calibrate+awq"]
PEERS = [("load", "safetensors"), ("convert", "safetensors+torch"), ("pack", "zstd -3"), ("pack", "zipnn"),
         ("unpack", "zstd -3"), ("unpack", "zipnn"), ("decode", "zipnn"), ("rtn-int4", "numpy"), ("rtn-int4", "llama.cpp Q4_0"),
         ("fp8-e4m3", "torch"), ("forward", "transformers"), ("forward", "llama.cpp"), ("forward", "llama.cpp f16"),
         ("forward-long", "transformers"), ("forward-long", "llama.cpp"), ("forward-long", "llama.cpp f16"),
         ("forward-moe", "transformers"), ("forward-moe-synthetic", "transformers"), ("calibrate+awq", "llm-compressor")]
WHAT = {"load": "read every tensor", "convert": "bf16 → f32 safetensors file", "pack": "lossless, data section",
        "unpack": "decompress to file", "decode": "decompress in memory", "rtn-int4": "INT4 quantization → file",
        "fp8-e4m3": "FP8 E4M3 per channel → file", "forward": "fp32 perplexity", "forward-long": "fp32 perplexity, one long window",
        "forward-moe": "fp32 perplexity, MoE", "forward-moe-synthetic": "fp32 perplexity, synthetic MoE",
        "calibrate+awq": "AWQ INT4 asym g64"}


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h, 8 + n


def tensor_bytes(h):
    return sum(v["data_offsets"][1] - v["data_offsets"][0] for v in h.values())


def targets(h):
    # the weights Ingot's RTN / FP8 rows quantize: 2-D, not embeddings, norms or lm_head
    return [k for k, v in h.items() if len(v["shape"]) == 2 and k.endswith(".weight")
            and "norm" not in k and "embed" not in k and "lm_head" not in k]


def run_tool(argv, **kw):
    """Run an external program; returns (seconds, its own peak RSS MB, stdout+stderr text)."""
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kw)
        _, status, ru = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if p.returncode:
        raise RuntimeError(f"{argv[0]} exit {p.returncode}: {text[-400:]}")
    return secs, ru.ru_maxrss / 1024, text


def durable(path):
    """fsync a written file and its directory; returns the seconds it took. Ingot commits every output that way
    (temporary name, fsync, rename), so each peer row that writes a file pays the same inside its timed region."""
    t = time.perf_counter()
    for p, flags in ((path, os.O_RDONLY), (os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)):
        fd = os.open(p, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return time.perf_counter() - t


# ---------------------------------------------------------------- rows (each runs in its own child process)

def row_load(a, tool):
    # safetensors' own reader (pt): every tensor materialized, every byte summed so every page is touched
    import torch
    from safetensors import safe_open
    t = time.perf_counter()
    total, s = 0, 0
    with safe_open(os.path.join(a.model, "model.safetensors"), framework="pt") as f:
        for k in f.keys():
            b = f.get_tensor(k).contiguous().view(torch.uint8).flatten()
            total += b.numel()
            s += int(b[: b.numel() // 8 * 8].view(torch.int64).sum()) + int(b[b.numel() // 8 * 8:].sum())
    return dict(seconds=time.perf_counter() - t, bytes_in=total)


def row_convert(a, tool):
    # the usual torch route: load_file, .float() every tensor, save_file; file to file like `ingot convert`
    from safetensors.torch import load_file, save_file
    src, dst = os.path.join(a.model, "model.safetensors"), os.path.join(a.work, "f32.safetensors")
    t = time.perf_counter()
    sd = load_file(src)
    save_file({k: v.float() for k, v in sd.items()}, dst)
    durable(dst)
    secs = time.perf_counter() - t
    out = os.path.getsize(dst)
    os.remove(dst)
    return dict(seconds=secs, bytes_in=tensor_bytes(header(src)[0]), bytes_out=out)


def zipnn_codec(a):
    from zipnn import ZipNN
    # bf16-aware byte grouping + Huffman/zstd, as scripts/bench-pack calls it
    return ZipNN(input_format="byte", bytearray_dtype="bfloat16", threads=a.threads)


def zipnn_file(a, src, dst, decompress=False):
    """ZipNN file to file through its Python API: read, (de)compress, write, fsync; returns the seconds it took."""
    z = zipnn_codec(a)
    t = time.perf_counter()
    with open(src, "rb") as f:
        data = f.read()
    out = z.decompress(data) if decompress else z.compress(data)
    with open(dst, "wb") as f:
        f.write(out)
    durable(dst)
    return time.perf_counter() - t


def row_pack(a, tool):
    # both peers compress exactly the tensor data section (data.bin, made by the parent), file to file like `ingot pack`;
    # Ingot's bytes_out is a whole .ingot file (with its header), the peers' only the compressed stream
    src = os.path.join(a.work, "data.bin")
    if tool == "zstd -3":
        dst = os.path.join(a.work, "data.zst")
        secs, rss, _ = run_tool(["zstd", "-q", "-f", "-3", f"-T{a.threads}", src, "-o", dst])
        secs += durable(dst)
        return dict(seconds=secs, bytes_in=os.path.getsize(src), bytes_out=os.path.getsize(dst), peak_rss_mb=rss)
    dst = os.path.join(a.work, "data.znn")
    secs = zipnn_file(a, src, dst)
    return dict(seconds=secs, bytes_in=os.path.getsize(src), bytes_out=os.path.getsize(dst),
                note="Python API, read + compress + write")


def row_unpack(a, tool):
    src = os.path.join(a.work, "data.bin")
    packed = os.path.join(a.work, "data.zst" if tool == "zstd -3" else "data.znn")
    dst = os.path.join(a.work, "data.out")
    if tool == "zstd -3":  # zstd decompression is single-threaded whatever -T says
        secs, rss, _ = run_tool(["zstd", "-q", "-f", "-d", packed, "-o", dst])
        res = dict(seconds=secs + durable(dst), peak_rss_mb=rss)
    else:
        res = dict(seconds=zipnn_file(a, packed, dst, decompress=True), note="Python API, read + decompress + write")
    ok = subprocess.run(["cmp", "-s", src, dst]).returncode == 0
    if not ok:
        res["note"] = ((res.get("note") or "") + "; round trip FAILED (output differs from input)").lstrip("; ")
    res.update(bytes_in=os.path.getsize(packed), bytes_out=os.path.getsize(dst))
    os.remove(dst)
    return res


def row_decode(a, tool):
    # ZipNN's decompress of the packed data section from memory into memory (the file read is not timed)
    packed = os.path.join(a.work, "data.znn")
    with open(packed, "rb") as f:
        data = f.read()
    z = zipnn_codec(a)
    t = time.perf_counter()
    out = z.decompress(data)
    secs = time.perf_counter() - t
    return dict(seconds=secs, bytes_in=len(out), bytes_out=len(data), note="GB/s of decoded bytes")


def rtn_int4(w, group):
    """quant_numpy.py's RTN INT4 (asymmetric, compressed-tensors formulas) on one f32 [rows, cols] array; a last group
    shorter than `group` is quantized on its own (as Ingot does). Returns packed nibbles, scales, zero points."""
    import numpy as np
    rows, cols = w.shape
    full = cols // group * group
    parts = ([(0, full, group)] if full else []) + ([(full, cols, cols - full)] if cols > full else [])
    qs, ss, zs = [], [], []
    for lo, hi, gsz in parts:
        g = w[:, lo:hi].reshape(rows, -1, gsz)
        mn = np.minimum(g.min(-1), 0); mx = np.maximum(g.max(-1), 0)
        s = (mx - mn) / 15; s[s == 0] = 1e-8
        zp = np.clip(np.round(-8 - mn / s), -8, 7)
        qs.append(np.clip(np.round(g / s[..., None] + zp[..., None]), -8, 7).astype(np.int8).reshape(rows, -1))
        ss.append(s); zs.append(zp.astype(np.int8))
    q = (np.concatenate(qs, 1) + 8).astype(np.uint8).reshape(-1)
    if q.size % 2:
        q = np.append(q, np.uint8(0))
    return q[0::2] | (q[1::2] << 4), np.concatenate(ss, 1), np.concatenate(zs, 1)


def row_rtn(a, tool):
    path = os.path.join(a.model, "model.safetensors")
    h, start = header(path)
    names = targets(h)
    nbytes = sum(h[k]["data_offsets"][1] - h[k]["data_offsets"][0] for k in names)
    if tool == "numpy":
        # numpy, f32 arithmetic (numpy has no bf16), single-threaded: numpy's elementwise ops do not use threads
        import numpy as np
        dst = os.path.join(a.work, "rtn.npy")
        t = time.perf_counter()
        raw = np.memmap(path, dtype=np.uint8, mode="r")
        with open(dst, "wb") as f:
            for k in names:
                b, e = h[k]["data_offsets"]
                w = (np.frombuffer(raw[start + b:start + e], dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
                for arr in rtn_int4(w.reshape(h[k]["shape"]), 128):
                    np.save(f, arr)
        durable(dst)
        secs = time.perf_counter() - t
        out = os.path.getsize(dst); os.remove(dst)
        return dict(seconds=secs, bytes_in=nbytes, bytes_out=out, note="single thread (numpy)")
    # llama.cpp: the bf16 GGUF (converted by the parent, untimed) → Q4_0; token embeddings left bf16 so the quantized
    # tensors are the same set Ingot quantizes (llama.cpp copies the embeddings and norms)
    src, dst = os.path.join(a.work, "model-bf16.gguf"), os.path.join(a.work, "q4_0.gguf")
    secs, rss, _ = run_tool([os.path.join(a.llama_cpp, "llama-quantize"), "--token-embedding-type", "bf16",
                             src, dst, "Q4_0", str(a.threads)])
    secs += durable(dst)
    out = os.path.getsize(dst); os.remove(dst)
    return dict(seconds=secs, bytes_in=nbytes, bytes_out=out, peak_rss_mb=rss,
                note="Q4_0: symmetric, group 32, different format; bytes_out includes bf16 embeddings")


def row_fp8(a, tool):
    # torch: per-output-channel scale absmax/448, cast to float8_e4m3fn, save_file (other tensors are not written)
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    path, dst = os.path.join(a.model, "model.safetensors"), os.path.join(a.work, "fp8.safetensors")
    h, _ = header(path)
    names = targets(h)
    t = time.perf_counter()
    out = {}
    with safe_open(path, framework="pt") as f:
        for k in names:
            w = f.get_tensor(k).float()
            s = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 448
            out[k] = (w / s).clamp(-448, 448).to(torch.float8_e4m3fn)
            out[k + "_scale"] = s.squeeze(1)
    save_file(out, dst)
    durable(dst)
    secs = time.perf_counter() - t
    size = os.path.getsize(dst); os.remove(dst)
    return dict(seconds=secs, bytes_in=sum(h[k]["data_offsets"][1] - h[k]["data_offsets"][0] for k in names),
                bytes_out=size)


def forward_setup(a, row):
    """(model dir, text or None, ids file or None, ctx, token budget) of a forward row."""
    if row == "forward":
        return a.model, a.text, None, a.ctx, a.eval_tokens
    if row == "forward-long":
        return a.model, a.text, None, a.long_ctx, a.long_ctx
    if row == "forward-moe":
        return a.moe_model, a.moe_text or a.text, None, a.moe_ctx, a.moe_tokens
    return a.synthetic_moe, None, a.synthetic_tokens, a.moe_ctx, a.moe_tokens


def eval_ids(model, text, ids_file, ctx, budget):
    if ids_file:
        ids = json.load(open(ids_file))
    else:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
        ids = tok.encode(open(text, encoding="utf-8").read(), add_special_tokens=False).ids
    return ids[: budget // ctx * ctx]


def row_forward(a, tool):
    model, text, ids_file, ctx, budget = forward_setup(a, a.row)
    if tool == "transformers":
        # fp32, eager attention, non-overlapping windows of ctx; each window predicts its ctx-1 next tokens (as Ingot)
        import torch
        from transformers import AutoModelForCausalLM
        ids = torch.tensor(eval_ids(model, text, ids_file, ctx, budget)).view(-1, ctx)
        t = time.perf_counter()
        m = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32, attn_implementation="eager").eval()
        load = time.perf_counter() - t
        nll, n = 0.0, 0
        t = time.perf_counter()
        with torch.inference_mode():
            for w in ids:
                logits = m(w[None]).logits[0, :-1].float()
                nll += float(torch.nn.functional.cross_entropy(logits, w[1:], reduction="sum"))
                n += w.numel() - 1
        secs = time.perf_counter() - t
        return dict(seconds=secs, tokens=ids.numel(), note=f"ppl {math.exp(nll / n):.4f} (model load {load:.1f} s)")
    # llama.cpp on the F32 or F16 GGUF: it tokenizes the text itself (same tokenizer, no BOS for this vocab) and takes
    # the first chunks*ctx tokens. Its PPL scores only the second half of each window (and computes the output head
    # only there), so it is not the same number.
    chunks = budget // ctx
    gguf = os.path.join(a.work, "model-f16.gguf" if tool.endswith("f16") else "model-f32.gguf")
    _, rss, out = run_tool([os.path.join(a.llama_cpp, "llama-perplexity"), "-m", gguf, "-f", text, "-c", str(ctx), "-b", str(ctx),
                            "--chunks", str(chunks), "-t", str(a.threads)])
    # time = from its "calculating perplexity" log line to its "Final estimate" line (log timestamps, m.ss.mmm.uuu):
    # the windows' forward passes and their scoring, without model load and tokenization
    stamp = r"(\d+)\.(\d+)\.(\d+)\.(\d+) I "
    t0 = re.search(stamp + r"perplexity: calculating perplexity over (\d+) chunks, n_ctx=(\d+)", out)
    t1 = re.search(stamp + r"Final estimate: PPL = ([\d.]+)", out)
    if not (t0 and t1):
        raise RuntimeError("unexpected llama-perplexity output: " + out[-400:])
    sec = lambda m: int(m.group(1)) * 60 + int(m.group(2)) + int(m.group(3)) / 1e3 + int(m.group(4)) / 1e6
    return dict(seconds=sec(t1) - sec(t0), tokens=int(t0.group(5)) * int(t0.group(6)), peak_rss_mb=rss,
                note=f"ppl {t1.group(5)} (scores the 2nd half of each window only)")


def row_awq(a, tool):
    # llm-compressor oneshot AWQ on CPU, as scripts/bench_awq_llmc.py runs it: AWQModifier() defaults + W4A16_ASYM
    # group 64, ignoring lm_head and the MoE routers, batch 1, on the blocks make_calib_blocks.py picks (Ingot's blocks)
    import torch
    from datasets import Dataset
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from compressed_tensors.quantization import preset_name_to_scheme
    from llmcompressor import oneshot
    from llmcompressor.modeling.moe.linearize import load_quantizable_moe
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier
    from llmcompressor.pipelines.cache import IntermediatesCache
    if not torch.accelerator.is_available() and hasattr(IntermediatesCache, "pin_memory"):
        IntermediatesCache.pin_memory = lambda self, *x, **k: None  # pin_memory raises without an accelerator
    ids = load_file(os.path.join(a.work, "calib.safetensors"))["input_ids"]
    cfg = AutoConfig.from_pretrained(a.awq_model)
    moe = any(getattr(cfg, k, None) for k in ("num_local_experts", "num_experts", "n_routed_experts"))
    t = time.perf_counter()
    with load_quantizable_moe() if moe else contextlib.nullcontext():  # per-expert Linears, as its MoE examples load
        # float32 on CPU (as Ingot computes; torch emulates bf16/fp16 matmul on x86 about 10x slower)
        model = AutoModelForCausalLM.from_pretrained(a.awq_model, dtype="auto" if torch.accelerator.is_available() else torch.float32)
    load = time.perf_counter() - t
    sch = preset_name_to_scheme("W4A16_ASYM", ["Linear"])
    sch.weights.group_size = 64
    recipe = [AWQModifier(), QuantizationModifier(config_groups={"group_0": sch},
                                                  ignore=["lm_head", "re:.*mlp.gate$", "re:.*block_sparse_moe.gate$"])]
    ds = Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": torch.ones_like(ids).tolist()})
    tok = AutoTokenizer.from_pretrained(a.awq_model)
    t = time.perf_counter()
    oneshot(model=model, recipe=recipe, dataset=ds, num_calibration_samples=ids.shape[0], max_seq_length=ids.shape[1],
            shuffle_calibration_samples=False, batch_size=1, processor=tok)
    secs = time.perf_counter() - t
    return dict(seconds=secs, tokens=int(ids.numel()),
                note=f"{os.path.basename(a.awq_model.rstrip('/'))}: oneshot only (model load {load:.1f} s, not counted; "
                     "no file written)")


ROW_FN = {"load": row_load, "convert": row_convert, "pack": row_pack, "unpack": row_unpack, "decode": row_decode,
          "rtn-int4": row_rtn, "fp8-e4m3": row_fp8, "forward": row_forward, "forward-long": row_forward, "forward-moe": row_forward,
          "forward-moe-synthetic": row_forward, "calibrate+awq": row_awq}


def child(a):
    # torch only where the peer runs on torch: a program this child starts (zstd, llama.cpp) begins with a peak RSS at
    # least this process's (vfork + exec), so those children stay small
    if a.tool in ("safetensors", "safetensors+torch", "torch", "transformers", "llm-compressor"):
        import torch
        torch.set_num_threads(a.threads)
    res = ROW_FN[a.row](a, a.tool)
    print(json.dumps(res))


# ---------------------------------------------------------------- parent: setup, one child per row

def prepare(a, wanted, log):
    """Untimed inputs the rows share: the data section, the calibration blocks, the GGUFs."""
    # Streamed in small buffers: a child's ru_maxrss starts at this process's peak RSS (posix_spawn/vfork shares the
    # parent's memory until exec, and exec records it), so the parent must stay small.
    src = os.path.join(a.model, "model.safetensors")
    _, start = header(src)
    pack = {"pack", "unpack", "decode"} & wanted
    with open(src, "rb") as f, open(os.path.join(a.work, "data.bin") if pack else os.devnull, "wb") as out:
        f.seek(start)  # copy the data section for the pack rows; this also warms the page cache for every row
        while chunk := f.read(1 << 22):
            out.write(chunk)
    if "calibrate+awq" in wanted:
        subprocess.run([sys.executable, os.path.join(HERE, "make_calib_blocks.py"), os.path.join(a.awq_model, "tokenizer.json"),
                        a.calib_text, os.path.join(a.work, "calib.safetensors"), "--samples", str(a.calib_samples),
                        "--seq-len", str(a.calib_seq_len)], check=True, stdout=sys.stderr)
    if a.llama_cpp:
        conv = os.path.join(a.llama_cpp, "..", "..", "convert_hf_to_gguf.py")
        # the converter imports sentencepiece before checking for tokenizer.model (absent here: it falls back to the
        # tokenizer.json BPE path), so a stub module stands in rather than installing sentencepiece
        stub = os.path.join(a.work, "stub"); os.makedirs(stub, exist_ok=True)
        open(os.path.join(stub, "sentencepiece.py"), "w").write("SentencePieceProcessor = None\n")
        env = dict(os.environ, PYTHONPATH=stub)
        llama_forward = {"forward", "forward-long"} & wanted
        for typ, needed in (("bf16", "rtn-int4" in wanted), ("f32", llama_forward), ("f16", llama_forward)):
            if needed:
                log(f"converting to {typ} GGUF (untimed)")
                subprocess.run([sys.executable, conv, a.model, "--outtype", typ, "--outfile",
                                os.path.join(a.work, f"model-{typ}.gguf")], check=True, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def parent(a):
    log = lambda m: print(f"peers_bench: {m}", file=sys.stderr, flush=True)
    wanted = set(ROWS) - set(a.skip)
    own = a.work is None
    a.work = a.work or tempfile.mkdtemp(prefix="peers-bench-")
    os.makedirs(a.work, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    rows = []
    try:
        prepare(a, wanted, log)
        for row, tool in PEERS:
            if row not in wanted and not (row == "pack" and {"unpack", "decode"} & wanted):  # they need pack's output
                continue
            if row == "forward-moe" and not a.moe_model or row == "forward-moe-synthetic" and not a.synthetic_moe:
                continue
            base = dict(row=row, tool=tool, what=WHAT[row], seconds=None, bytes_in=None, bytes_out=None, tokens=None,
                        peak_rss_mb=None, note=None)
            if "llama.cpp" in tool and not a.llama_cpp:
                log(f"{row} / {tool}: skipped (no --llama-cpp)")
                continue
            log(f"{row} / {tool}")
            argv = [sys.executable, os.path.abspath(__file__), "--row", row, "--tool", tool, "--work", a.work] + a.passthrough
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
                _, status, ru = os.wait4(p.pid, 0)
                out.seek(0); err.seek(0)
                lines = out.read().decode().strip().splitlines()
                errtext = err.read().decode(errors="replace")
            base["peak_rss_mb"] = round(ru.ru_maxrss / 1024, 1)
            if os.waitstatus_to_exitcode(status) == 0 and lines:
                res = json.loads(lines[-1])
                if "peak_rss_mb" in res:
                    res["peak_rss_mb"] = round(res["peak_rss_mb"], 1)
                base.update(res)
            else:
                base["note"] = "FAILED: " + (errtext.strip().splitlines() or ["no output"])[-1][-300:]
            log(f"  {base['seconds']} s, peak {base['peak_rss_mb']} MB, {base['note'] or ''}")
            if row in wanted:
                rows.append(base)
    finally:
        if own:
            shutil.rmtree(a.work, ignore_errors=True)
    print(json.dumps(rows, indent=1))


# ---------------------------------------------------------------- the comparison table

def rate(r):
    """(value, unit) of a row's speed; higher is faster except for calibrate+awq (seconds)."""
    if r.get("seconds") is None:
        return None, ""
    if r["row"].startswith("forward"):
        return (r["tokens"] / r["seconds"], "tok/s") if r.get("tokens") else (None, "")
    if r["row"] == "calibrate+awq":
        return r["seconds"], "s"
    return (r["bytes_in"] / r["seconds"] / 1e9, "GB/s") if r.get("bytes_in") else (None, "")


def table(ingot_rows, peer_rows):
    def fmt(r):
        v, unit = rate(r)
        if v is None:
            return "failed" if r.get("seconds") is None else "–"
        s = f"{v:.0f} {unit}" if unit == "tok/s" else f"{v:.1f} s" if unit == "s" else f"{v:.3f} {unit}"
        if r["row"] == "pack" and r.get("bytes_out"):
            s += f", ratio {r['bytes_in'] / r['bytes_out']:.3f}"
        return s

    def rss(r):
        return "–" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:.0f}"

    lines = ["| row | Ingot | Ingot peak RSS MB | peer | peer figure | peer peak RSS MB | Ingot ÷ peer | notes |",
             "|---|---|---:|---|---|---:|---:|---|"]
    ing = {r["row"]: r for r in ingot_rows}
    for key in ROWS:
        i = ing.get(key)
        peers = [p for p in peer_rows if p["row"] == key] or [None]
        for p in peers:
            if i is None and p is None:
                continue
            ratio = "–"
            if i and p:
                (vi, unit), (vp, _) = rate(i), rate(p)
                if vi and vp:  # speed ratio: >1 means Ingot is faster
                    ratio = f"{(vp / vi if unit == 's' else vi / vp):.2f}×"
            notes = "; ".join(x for x in ((i or {}).get("note") and f"Ingot: {i['note']}", p and p.get("note")) if x)
            lines.append(f"| {key} | {fmt(i) if i else '–'} | {rss(i) if i else '–'} | {p['tool'] if p else '–'} | "
                         f"{fmt(p) if p else '–'} | {rss(p) if p else '–'} | {ratio} | {notes} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", nargs=2, metavar=("INGOT_JSON", "PEERS_JSON"))
    ap.add_argument("--model")
    ap.add_argument("--text")
    ap.add_argument("--eval-tokens", type=int, default=2048)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--long-ctx", type=int, default=2048)
    ap.add_argument("--moe-model")
    ap.add_argument("--moe-text")
    ap.add_argument("--moe-ctx", type=int, default=256)
    ap.add_argument("--moe-tokens", type=int, default=2048)
    ap.add_argument("--synthetic-moe")
    ap.add_argument("--synthetic-tokens")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--awq-model", default=os.path.join(HERE, "..", "fixtures", "tiny-moe-austen"))
    ap.add_argument("--calib-text", default=os.path.join(HERE, "..", "fixtures", "texts", "emma.txt"))
    ap.add_argument("--calib-samples", type=int, default=32)
    ap.add_argument("--calib-seq-len", type=int, default=256)
    ap.add_argument("--skip", action="append", default=[], choices=ROWS)
    ap.add_argument("--llama-cpp", metavar="BIN_DIR")
    ap.add_argument("--work")
    ap.add_argument("--row", choices=ROWS, help=argparse.SUPPRESS)
    ap.add_argument("--tool", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.table:
        print(table(*(json.load(open(f)) for f in a.table)))
        return
    if not (a.model and a.text):
        ap.error("--model and --text are required")
    if a.row:
        return child(a)
    a.passthrough = ["--model", a.model, "--text", a.text, "--eval-tokens", str(a.eval_tokens), "--ctx", str(a.ctx),
                     "--long-ctx", str(a.long_ctx), "--moe-ctx", str(a.moe_ctx), "--moe-tokens", str(a.moe_tokens),
                     "--threads", str(a.threads), "--awq-model", a.awq_model, "--calib-text", a.calib_text,
                     "--calib-samples", str(a.calib_samples), "--calib-seq-len", str(a.calib_seq_len)]
    for flag, v in (("--moe-model", a.moe_model), ("--moe-text", a.moe_text), ("--synthetic-moe", a.synthetic_moe),
                    ("--synthetic-tokens", a.synthetic_tokens), ("--llama-cpp", a.llama_cpp)):
        if v:
            a.passthrough += [flag, v]
    parent(a)


if __name__ == "__main__":
    main()
