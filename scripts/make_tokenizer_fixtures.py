#!/usr/bin/env python3
"""Expected token ids from Hugging Face `tokenizers` for Ingot's BPE tokenizer tests.

For each fixture tokenizer, encodes real text (slices of fixtures/texts/*) and an adversarial set (many scripts,
digits, emoji, combining marks, CR/LF mixes, space runs, contractions in both cases, special tokens inside text,
long words, seeded random strings) with and without add_special_tokens, and decodes the ids back, writing
fixtures/tokenizer/expected_<name>.json:

    {"tokenizer": <repo-relative tokenizer.json>, "overrides": {...} | absent, "tokenizers_version": ...,
     "vocab_size": ..., "token_ids": {token: id}, "cases": [{"text", "ids", "ids_with_special", "decoded",
     "decoded_skip_special"}]}

Tokenizers: the three real ones in the repo (tiny-moe-austen, peers' Llama tokenizer, SmolLM2 = the
tokenizer.json made by fixtures/tools/make_smollm2.py, copied to fixtures/tokenizer/smollm2-tokenizer.json), and
variants of SmolLM2's file that exercise the other supported structures (Llama-3 split regex + ignore_merges +
TemplateProcessing; Qwen2 split regex + NFC; GPT-2 Split + prefix spaces + NFC + added-token flags; Contiguous Digits + Roberta
post-processor; every Split behavior with literal patterns and invert). A variant is stored as "overrides": top-level keys replaced in the base file, and
"model_overrides": keys replaced inside "model"; the Swift test applies the same overrides.

usage: /work/venv/bin/python scripts/make_tokenizer_fixtures.py   (needs `tokenizers`; written with 0.23.3)
"""
import json
import os
import random

import tokenizers
from tokenizers import Tokenizer

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FX = os.path.join(ROOT, "fixtures")
OUT = os.path.join(FX, "tokenizer")

GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SMOL = "fixtures/tokenizer/smollm2-tokenizer.json"


def added(id_, content, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": normalized, "special": special}


def smol_added():
    with open(os.path.join(ROOT, SMOL), encoding="utf-8") as f:
        return json.load(f)["added_tokens"]


VARIANTS = {
    # Llama-3 layout: Split(Llama-3 regex) + ByteLevel without regex, ignore_merges, BOS/EOS template.
    "llama3style": (SMOL, {
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_RE}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                        {"SpecialToken": {"id": "<|im_end|>", "type_id": 0}}],
             "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [1], "tokens": ["<|im_start|>"]},
                                "<|im_end|>": {"id": "<|im_end|>", "ids": [2], "tokens": ["<|im_end|>"]}}}]},
    }, {"ignore_merges": True}),
    # GPT-2 regex as a Split step, prefix spaces on every piece, NFC, and added tokens with every flag.
    "prefixflags": (SMOL, {
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": GPT2_RE}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": False}]},
        "added_tokens": smol_added()[:3] + [
            added(3, "<repo_name>", lstrip=True),
            added(4, "<reponame>", rstrip=True),
            added(5, "<file_sep>", lstrip=True, rstrip=True),
            added(6, "<filename>", single_word=True),
            added(49152, "café", special=False, normalized=True),
            added(49153, "ZZtop", special=False, normalized=False, single_word=True),
            added(49154, "<|endoftext|>x", special=True),  # longer than <|endoftext|>: leftmost-longest
        ],
    }, {}),
    # Contiguous digit runs before GPT-2 ByteLevel with prefix space; Roberta-style post-processor.
    "digitsroberta": (SMOL, {
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": False},
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|im_end|>", 2], "cls": ["<|im_start|>", 1],
                           "trim_offsets": True, "add_prefix_space": True},
    }, {}),
    # Qwen2 layout: NFC, Split(Qwen2 regex) + ByteLevel without regex, no post-processor.
    "qwen2style": (SMOL, {
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_RE}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
        "post_processor": None,
    }, {}),
    # Every Split behavior, literal patterns and invert (structures no shipped file uses, checked anyway).
    "splitmisc": (SMOL, {
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": "\n"}, "behavior": "Removed", "invert": False},
            {"type": "Split", "pattern": {"String": ","}, "behavior": "MergedWithPrevious", "invert": False},
            {"type": "Split", "pattern": {"String": " the"}, "behavior": "MergedWithNext", "invert": False},
            {"type": "Split", "pattern": {"String": "e"}, "behavior": "Contiguous", "invert": False},
            {"type": "Split", "pattern": {"String": "o"}, "behavior": "Isolated", "invert": True},
            {"type": "Split", "pattern": {"String": "a"}, "behavior": "MergedWithNext", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
    }, {}),
}

REAL = {
    "austen": "fixtures/tiny-moe-austen/tokenizer.json",
    "peers": "fixtures/peers/models/tokenizer/tokenizer.json",
    "smollm2": SMOL,
}


def read(name, start, n):
    with open(os.path.join(FX, "texts", name), encoding="utf-8") as f:
        return f.read()[start:start + n]


TEXTS = [read("wiki.utf8", 0, 6000), read("wiki.utf8", 700000, 3000), read("c4.utf8", 2000, 4000),
         read("c4.utf8", 400000, 2500), read("emma.txt", 30000, 3000), read("persuasion.txt", 100000, 3000)]

ADVERSARIAL = [
    "", " ", "  ", "     ", "\n", "\n\n", "\r\n", "\r\r\n", " \n ", "\t", "a  b", "a\n\nb", "a \n\n  b",
    "   leading", "trailing   ", "trailing\n", "tab\tsep\t\tx", "\r\n windows\r\n\r\nline", " \n\t \n  x",
    "DON'T don't I'M you'RE we've WE'VE they'll THEY'LL she'd SHE'D it's IT'S 'quoted' ''s '''",
    "x'll x'LL 'S 's 'ſ 'ſomething O'Neil rock'n'roll", "'", "''", "'re", " 're", "'t'", "'\n",
    "1234567", "12345678901234567890", "3.14159 1,000,000 2024-11-22 +44 (0)20", "a1b22c333d4444",
    "१२३४ ٣٤٥ ۱۲۳ ๑๒๓ ０１２３ ²³¹ ½ ⅓ Ⅻ ⅻ ① ⑳ 𝟙𝟚",
    "naïve café résumé Ångström Œuvre ß ẞ ǅ ǈ", "Ελληνικά русский текст עברית العربية हिन्दी தமிழ் ไทย ქართული Հայերեն ኢትዮጵያ",
    "中文字符和日本語のテキスト 한국어 ｶﾀｶﾅ", "emoji 🙂👍🏽 family 👨‍👩‍👧 flags 🇫🇷🇯🇵 keycap 1️⃣",
    "combining e\u0301 a\u0300 \u0301\u0302 x\u0308\u0308", "math ∑∫√∞ ≤≥ ∀x∈ℝ", "symbols !!! ??? ... --- *** ~~~ ###",
    "nbsp\u00a0here em\u2003space ideo\u3000space nel\u0085x ls\u2028ps\u2029end", "zwj\u200dzwnj\u200c bom\ufeffx",
    "controls \x00\x01\x07\x1b\x7f end", "ＦＵＬＬ　ＷＩＤＴＨ　１２３", "mixed123abc456DEF", "snake_case camelCase kebab-case",
    "http://example.com/path?q=1&b=2#frag user@mail.org", "    indented code\n\tdef f(x):\n\t\treturn x**2\n",
    "x" * 300, "ab" * 150, "=-" * 100, "a" * 1000, " " * 50 + "x", "\n" * 20, "日本" * 100,
    "<|endoftext|>", "<|endoftext|><|endoftext|>", "a<|endoftext|>b", " <|endoftext|> ", "<|endoftext|",
    "<|endoftext|>special<|im_start|>in text</s><s><pad><|pad|>", "<|im_start|>user\nhi there<|im_end|>\n",
    "  <repo_name>  x <reponame>  y<file_sep>  z <filename> w<filename>x ZZtop xZZtop ZZtop!",
    "cafe\u0301 café <|endoftext|>x <|endoftext|>y",
]

POOL = (list("abcXYZ  \t\n\r'''0123456789.,!?-_") + ["s", "t", "re", "ll", "S", "LL", "é", "e\u0301", "ſ", "ß",
        "中", "日本", "한", "ไ", "ی", "٣", "१", "²", "½", "Ⅻ", "🙂", "👍🏽", "\u200d", "\u00a0", "\u3000", "\u2028",
        "\u0085", "<|endoftext|>", "<s>", "<|im_start|>"])


def random_strings(n=150, seed=1234):
    rng = random.Random(seed)
    return ["".join(rng.choice(POOL) for _ in range(rng.randint(0, 30))) for _ in range(n)]


def load(path, overrides=None, model_overrides=None):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        d = json.load(f)
    for k, v in (overrides or {}).items():
        d[k] = v
    for k, v in (model_overrides or {}).items():
        d["model"][k] = v
    return Tokenizer.from_str(json.dumps(d))


def cases_for(tok, texts):
    out = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        out.append({"text": t, "ids": ids, "ids_with_special": tok.encode(t, add_special_tokens=True).ids,
                    "decoded": tok.decode(ids, skip_special_tokens=False),
                    "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    return out


def fnv1a64(ids):
    """FNV-1a 64 over the ids as little-endian uint32 (the Swift test computes the same)."""
    h = 0xCBF29CE484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def whole_files(tok, names):
    out = []
    for name in names:
        with open(os.path.join(FX, "texts", name), encoding="utf-8") as f:
            ids = tok.encode(f.read(), add_special_tokens=False).ids
        out.append({"file": "fixtures/texts/" + name, "count": len(ids), "fnv1a64": fnv1a64(ids)})
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    texts = TEXTS + ADVERSARIAL + random_strings()
    probes = ["Ġthe", "the", "<|endoftext|>", "<|im_start|>", "<s>", "</s>", "café", "ZZtop", "not-a-token-xyz"]
    jobs = [(name, path, None, None) for name, path in REAL.items()]
    jobs += [(name, base, ov, mov) for name, (base, ov, mov) in VARIANTS.items()]
    total = 0
    for name, path, ov, mov in jobs:
        tok = load(path, ov, mov)
        doc = {"tokenizer": path}
        if ov or mov:
            doc["overrides"] = ov or {}
            doc["model_overrides"] = mov or {}
        doc["tokenizers_version"] = tokenizers.__version__
        doc["vocab_size"] = tok.get_vocab_size(with_added_tokens=True)
        doc["token_ids"] = {p: tok.token_to_id(p) for p in probes}
        # Real text only for the real tokenizers (keeps the fixtures small); every tokenizer gets the rest.
        doc["cases"] = cases_for(tok, (TEXTS if ov is None else TEXTS[:2]) + ADVERSARIAL + random_strings())
        # Whole text files, checked by count and hash (the ids themselves would be megabytes).
        doc["whole_files"] = whole_files(tok, ["wiki.utf8", "c4.utf8", "emma.txt", "persuasion.txt"]
                                         if ov is None else ["c4.utf8"])
        dest = os.path.join(OUT, f"expected_{name}.json")
        with open(dest, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        size = os.path.getsize(dest)
        total += size
        print(f"{name}: {len(doc['cases'])} cases, {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
