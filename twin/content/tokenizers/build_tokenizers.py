#!/usr/bin/env python3
"""Build the twin's real tokenizers from pinned registry packages (build time; stdlib, npm, pip and node).

    python3 twin/content/tokenizers/build_tokenizers.py [--out build/tokenizers] [--cache build/cache] [--force]

Inputs, fetched once with the ordinary clients into --cache (keyed by version, checked by sha256; a rebuild
with the cache present is offline):
- npm `llama3-tokenizer-js@1.2.0`: Llama 3's tokenizer.json vocabulary (128,000 byte-level tokens in id order)
  and its 280,147 merges in priority order, compressed in src/data-converted.js; its own test suite.
- npm `gpt-tokenizer@4.0.0`: data/o200k_base.tiktoken and data/cl100k_base.tiktoken, byte-identical to OpenAI's
  published encodings (the sha256 openai_harmony checks), and data/TestPlans.txt (tiktoken's test vectors).
- PyPI `llama-cpp-python==0.3.36` (sdist): llama.cpp's copies of the Hugging Face chat templates of
  meta-llama/Llama-3.1-8B-Instruct and openai/gpt-oss-120b (vendor/llama.cpp/models/templates/).

Outputs in --out:
- llama3/ and gpt-oss/: tokenizer.json (byte-level BPE with the split-regex pre-tokenizer and ignore_merges,
  as the real repos ship; gpt-oss's merges derived from the o200k ranks the way the Llama 3 merges are, which
  the build checks by re-deriving Llama 3's), tokenizer_config.json (specials, bos/eos, chat template),
  special_tokens_map.json
- encodings/: o200k_base.tiktoken, cl100k_base.tiktoken (the published files)
- vectors.json: the packages' own test vectors and reference ids for a varied corpus (computed by the packages
  with node); the build fails unless the twin's encoder (vllm_twin.tokenizer) reproduces every one
- MANIFEST.json: package versions and sha256, output sizes, the recipe key (no-op rebuild when unchanged)
"""

import argparse
import base64
import fcntl
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "twin" / "vllm"))

from vllm_twin.tokenizer import BPE, BYTE_CHAR, Tokenizer

NPM = {
    "llama3-tokenizer-js": ("1.2.0", "51084690c7239708a3eb6adead1173bfd61b1f4d31cb0b8487e12ba466346ff0"),
    "gpt-tokenizer": ("4.0.0", "e50075c9a98389fbe59bf6b42d8d50b49c1cbd7aec6c205bfc28847ee0eeb20a"),
}
SDIST = ("llama-cpp-python", "0.3.36", "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e")
TEMPLATES = {
    "llama3": ("meta-llama-Llama-3.1-8B-Instruct.jinja", "e10ca381b1ccc5cf9db52e371f3b6651576caee0a630b452e2816b2d404d4b65"),
    "gpt-oss": ("openai-gpt-oss-120b.jinja", "a4c9919cbbd4acdd51ccffe22da049264b1b73e59055fa58811a99efbd7c8146"),
}
# The LFS sha256 of the models' published tokenizer.json (meta-llama/Llama-3.1-8B-Instruct, openai/gpt-oss-120b):
# the conversion reproduces both files byte for byte.
PUBLISHED_TOKENIZER_JSON = {
    "llama3": "79e3e522635f3171300913bb421464a87de6222182a0570b9b2ccba2a964b2b4",
    "gpt-oss": "0614fe83cadab421296e664e1f48f4261fa8fef6e03e63bb75c20f38e37d07d3",
}
PUBLISHED = {  # OpenAI's published encodings (openai/harmony public_encodings.rs)
    "o200k_base.tiktoken": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base.tiktoken": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
O200K_PATTERN = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)

LLAMA3_SPECIAL = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
] + [f"<|reserved_special_token_{i}|>" for i in range(3, 248)]
# gpt-oss's tokenizer.json: o200k_harmony's specials up to <|endofprompt|> (200,019 tokens in all).
HARMONY_SPECIAL = {
    "<|startoftext|>": 199998,
    "<|endoftext|>": 199999,
    "<|reserved_200000|>": 200000,
    "<|reserved_200001|>": 200001,
    "<|return|>": 200002,
    "<|constrain|>": 200003,
    "<|reserved_200004|>": 200004,
    "<|channel|>": 200005,
    "<|start|>": 200006,
    "<|end|>": 200007,
    "<|message|>": 200008,
    "<|reserved_200009|>": 200009,
    "<|reserved_200010|>": 200010,
    "<|reserved_200011|>": 200011,
    "<|call|>": 200012,
    **{f"<|reserved_{i}|>": i for i in range(200013, 200018)},
    "<|endofprompt|>": 200018,
}


def log(msg):
    print(f"build_tokenizers: {msg}", flush=True)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- inputs


def npm_package(cache, name):
    """The package's tarball in cache/npm (npm pack on first use) and its extracted directory."""
    version, digest = NPM[name]
    tgz = cache / "npm" / f"{name}-{version}.tgz"
    if not tgz.exists():
        tgz.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tgz.parent) as tmp:
            subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", tmp], check=True, capture_output=True)
            (packed,) = Path(tmp).glob("*.tgz")
            packed.replace(tgz)
    got = sha256(tgz.read_bytes())
    if got != digest:
        raise SystemExit(f"{tgz}: sha256 {got}, expected {digest} ({name}@{version})")
    unpacked = cache / "npm" / f"{name}-{version}"
    if not (unpacked / "package" / "package.json").exists():
        shutil.rmtree(unpacked, ignore_errors=True)
        with tarfile.open(tgz) as tf:
            try:
                tf.extractall(unpacked, filter="data")
            except TypeError:  # a Python without extraction filters (< 3.11.4)
                tf.extractall(unpacked)
    return unpacked / "package"


def chat_templates(cache):
    """{kind: template text} from the llama-cpp-python sdist; only the two templates are kept in the cache."""
    name, version, digest = SDIST
    keep = cache / "chat-templates" / f"{name}-{version}"
    wanted = {kind: keep / fname for kind, (fname, _) in TEMPLATES.items()}
    sdist_spec = f"{name}=={version}"
    if not all(p.exists() for p in wanted.values()):
        keep.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=keep.parent) as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", tmp, sdist_spec],
                check=True,
                capture_output=True,
            )
            (sdist,) = Path(tmp).glob("*.tar.gz")
            got = sha256(sdist.read_bytes())
            if got != digest:
                raise SystemExit(f"{sdist.name}: sha256 {got}, expected {digest}")
            prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/models/templates/"
            with tarfile.open(sdist) as tf:
                for kind, path in wanted.items():
                    path.write_bytes(tf.extractfile(prefix + TEMPLATES[kind][0]).read())
    out = {}
    for kind, path in wanted.items():
        data = path.read_bytes()
        if sha256(data) != TEMPLATES[kind][1]:
            raise SystemExit(f"{path}: unexpected sha256 {sha256(data)}")
        out[kind] = data.decode()
    return out


def llama3_vocab_and_merges(pkg):
    """The vocabulary (byte-level strings, index = id) and merges from llama3-tokenizer-js's compressed data:
    base64 of the newline-joined vocab; merges as pairs of 17-bit vocab indices, big-endian bit packed."""
    src = (pkg / "src" / "data-converted.js").read_text()
    vocab = base64.b64decode(re.search(r'const llama_vocab_base64 = "([^"]*)"', src).group(1)).decode().split("\n")
    raw = base64.b64decode(re.search(r'const llama_merges_binary = "([^"]*)"', src).group(1))
    ids = []
    for at in range(0, len(raw), 17):  # 17 bytes = 136 bits = 8 ids
        chunk = raw[at : at + 17]
        bits, nbits = int.from_bytes(chunk, "big"), len(chunk) * 8
        ids.extend((bits >> (nbits - 17 * (k + 1))) & 0x1FFFF for k in range(nbits // 17))
    merges = [(vocab[ids[k]], vocab[ids[k + 1]]) for k in range(0, len(ids) // 2 * 2, 2)]
    if len(vocab) != 128000 or len(merges) != 280147:
        raise SystemExit(f"llama3-tokenizer-js: {len(vocab)} tokens, {len(merges)} merges (expected 128000, 280147)")
    return vocab, merges


def tiktoken_ranks(data):
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def llama3_test_vectors(pkg):
    """(text, ids) of llama3-tokenizer-js's own testEncode/testEncodeAndDecode calls without options."""
    src = (pkg / "src" / "llama3-tokenizer.js").read_text()
    out = []
    for m in re.finditer(r"testEncodeAndDecode\((\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'),\s*\[([0-9,\s]*)\]\s*\)", src):
        lit = m.group(1)
        if lit[0] == "'":
            lit = '"' + lit[1:-1].replace("\\'", "'").replace('"', '\\"') + '"'
        out.append((json.loads(lit, strict=False), [int(x) for x in m.group(2).replace(" ", "").split(",") if x]))
    return out


def testplans(data, names=("o200k_base", "cl100k_base")):
    """gpt-tokenizer's data/TestPlans.txt as {encoding: [(sample, ids)]} (parsed as its own test does)."""
    out = {n: [] for n in names}
    for plan in data.split("\n\n"):
        lines = plan.split("\n")
        if len(lines) < 3 or not all(lines[:3]):
            continue
        name = lines[0].split(": ")[1]
        if name in out:
            out[name].append((": ".join(lines[1].split(": ")[1:]), json.loads(lines[2].split(": ")[1])))
    return out


# ---------------------------------------------------------------- conversion


def derive_merges(vocab):
    """Merges from ranks, the standard tiktoken -> tokenizer.json conversion: for each token (by rank) every split
    into two tokens, ordered by the parts' ranks. Reproduces Llama 3's published merges exactly."""
    merges = []
    for token, rank in vocab.items():
        local = []
        for i in range(1, len(token)):
            left, right = vocab.get(token[:i]), vocab.get(token[i:])
            if left is not None and right is not None:
                local.append((rank, left, right, token[:i], token[i:]))
        local.sort()
        merges.extend(local)
    merges.sort(key=lambda m: m[0])
    return [(m[3], m[4]) for m in merges]


def byte_level(raw):
    return "".join(BYTE_CHAR[b] for b in raw)


def added_token(content, i):
    flags = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    return {"id": i, "content": content, **flags}


def tokenizer_json(vocab, merges, special, pattern, post_processor, merges_as_pairs):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added_token(c, i) for c, i in sorted(special.items(), key=lambda kv: kv[1])],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": vocab,
            "merges": [list(m) for m in merges] if merges_as_pairs else [f"{a} {b}" for a, b in merges],
        },
    }


def tokenizer_config(special, bos, eos, template, extra):
    ordered = sorted(special.items(), key=lambda kv: kv[1])
    decoder = {str(i): {k: v for k, v in added_token(c, i).items() if k != "id"} for c, i in ordered}
    return {
        "added_tokens_decoder": decoder,
        "bos_token": bos,
        "chat_template": template,
        "eos_token": eos,
        "model_input_names": ["input_ids", "attention_mask"],
        "tokenizer_class": "PreTrainedTokenizerFast",
        **extra,
    }


def write_json(path, obj, indent=2, newline="\n", sort_keys=False):
    path.write_text(json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=sort_keys) + newline, encoding="utf-8")


def build_llama3(out, pkg, template):
    vocab_list, merges = llama3_vocab_and_merges(pkg)
    vocab = {t: i for i, t in enumerate(vocab_list)}
    derived = derive_merges(vocab)
    if derived != merges:
        raise SystemExit("derive_merges does not reproduce Llama 3's published merges: the o200k conversion is suspect")
    special = {c: 128000 + i for i, c in enumerate(LLAMA3_SPECIAL)}
    bos = "<|begin_of_text|>"
    post = {
        "type": "Sequence",
        "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [
                    {"SpecialToken": {"id": bos, "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": bos, "type_id": 1}},
                    {"Sequence": {"id": "B", "type_id": 1}},
                ],
                "special_tokens": {bos: {"id": bos, "ids": [128000], "tokens": [bos]}},
            },
        ],
    }
    d = out / "llama3"
    d.mkdir(parents=True)
    write_json(d / "tokenizer.json", tokenizer_json(vocab, merges, special, LLAMA3_PATTERN, post, False), newline="")
    extra = {"clean_up_tokenization_spaces": True, "model_max_length": 131072}
    write_json(d / "tokenizer_config.json", tokenizer_config(special, bos, "<|eot_id|>", template, extra), sort_keys=True)
    write_json(d / "special_tokens_map.json", {"bos_token": bos, "eos_token": "<|eot_id|>"})
    return len(merges)


def build_gpt_oss(out, o200k, template):
    ranks = tiktoken_ranks(o200k)
    if sorted(ranks.values()) != list(range(199998)):
        raise SystemExit("o200k_base: ranks are not 0..199997")
    vocab = {byte_level(raw): rank for raw, rank in sorted(ranks.items(), key=lambda kv: kv[1])}
    merges = derive_merges(vocab)
    post = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    d = out / "gpt-oss"
    d.mkdir(parents=True)
    write_json(d / "tokenizer.json", tokenizer_json(vocab, merges, HARMONY_SPECIAL, O200K_PATTERN, post, True), newline="")
    extra = {
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": "<|endoftext|>",
    }
    config = tokenizer_config(HARMONY_SPECIAL, "<|startoftext|>", "<|return|>", template, extra)
    write_json(d / "tokenizer_config.json", config, sort_keys=True)
    write_json(
        d / "special_tokens_map.json", {"bos_token": "<|startoftext|>", "eos_token": "<|return|>", "pad_token": "<|endoftext|>"}
    )
    return len(merges)


# ---------------------------------------------------------------- verification


POOL = [
    "the", "The", "THE", "robot", "Jetson", "Thor", "NVIDIA", "tokenizer", "llama", "Llamas", "anti-disestablishment",
    "don't", "DON'T", "we're", "I'LL", "she'd", "it'S", "they've", "I'm", "x", "é", "naïve", "café", "Ünïcödé",
    "straße", "e\u0301", "Z\u0308\u0327", "日本語", "中文字符", "한국어", "こんにちは", "Привет", "мир", "مرحبا",
    "שלום", "हिन्दी", "ελληνικά", "ไทย", "🦙", "👍🏽", "🇩🇪", "👨\u200d👩\u200d👧", "🙂🙂", "∑∫√π", "①②③", "Ⅻ",
    "²³", "½", "\uff21\uff22\uff23\uff11\uff12\uff13", "ﬁ",
    "0", "7", "42", "1234", "12345678901", "3.14159", "1,000,000", "-17", "0x1F",
    "2024-06-01", "v0.10.1.1", "$9.99", "100%", "#include <stdio.h>", "def f(x):", "return x**2", "{\"a\": [1, 2]}",
    "</div>", "===>", "a/b/c", "C:\\path\\to", "https://example.org/a?b=c", "foo_bar", "camelCase", "snake_case_99",
    "x += 1;", "if (a && b) {", "}", "...", "?!", "—", "«quote»", "“smart”", "'single'", "\"double\"", "((()))",
    "@user", "#tag", "~/.cache", "<|notspecial|>", "<|endoftext", "|>",
]
SEPARATORS = ["", " ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n  ", "    ", "\t\t", " \t ", "\u3000"]
FIXED = [
    "",
    " ",
    "\n",
    "          ",
    "   \n\n   \n",
    "hello world",
    "Hello, World! How are you today? 🌍",
    "Jetson Thor is fast.",
    "Write a 5-sentence paragraph about Jetson Thor for robotics developers.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "SELECT * FROM users WHERE id = 42;",
    "    indented\n\tand tabbed\n",
    "trailing spaces   ",
    "a" * 200,
    " " * 300 + "x",
    "12345678901234567890",
    "🦙" * 20,
    "ab" * 150,
]


def corpus(n=400, seed=20261202):
    rng = random.Random(seed)
    out = list(FIXED)
    while len(out) < n:
        parts = [rng.choice(POOL) for _ in range(rng.randint(1, 14))]
        out.append("".join(p + rng.choice(SEPARATORS) for p in parts))
    return out


def verify(out, llama_pkg, gpt_pkg, o200k, cl100k):
    """The twin's encoder against the packages: their test vectors, and a varied corpus encoded by them (node)."""
    texts = corpus()
    (out / "corpus.json").write_text(json.dumps(texts))
    ref_path = out / "reference.json"
    run = subprocess.run(
        ["node", str(HERE / "reference.mjs"), str(llama_pkg), str(gpt_pkg), str(out / "corpus.json"), str(ref_path)],
        capture_output=True,
        text=True,
    )
    if run.returncode:
        raise SystemExit(f"node reference.mjs failed:\n{run.stdout}{run.stderr}")
    log(run.stdout.strip())
    ref = json.loads(ref_path.read_text())
    ref_path.unlink()
    (out / "corpus.json").unlink()
    plans = testplans((gpt_pkg / "data" / "TestPlans.txt").read_text())
    vectors = {
        "packages": {name: version for name, (version, _) in NPM.items()},
        "llama3_package_tests": llama3_test_vectors(llama_pkg),
        "testplans": plans,
        "corpus": texts,
        "llama3": ref["llama3"],
        "o200k_base": ref["o200k_base"],
    }
    llama = Tokenizer(out / "llama3", 128256)
    gpt = Tokenizer(out / "gpt-oss", 201088)
    cl100k_bpe = BPE(tiktoken_ranks(cl100k), LLAMA3_PATTERN, {})
    failures = []
    checks = [(llama.encode, t, ids, "llama3 package test") for t, ids in vectors["llama3_package_tests"]]
    checks += [(gpt.encode, t, ids, "TestPlans o200k_base") for t, ids in plans["o200k_base"]]
    checks += [(cl100k_bpe.encode, t, ids, "TestPlans cl100k_base") for t, ids in plans["cl100k_base"]]
    checks += [(llama.encode, t, ids, "corpus llama3") for t, ids in zip(texts, ref["llama3"], strict=True)]
    checks += [(gpt.encode, t, ids, "corpus o200k") for t, ids in zip(texts, ref["o200k_base"], strict=True)]
    for encode, text, ids, what in checks:
        if encode(text) != ids:
            failures.append(f"{what}: {text!r}: twin {encode(text)} != {ids}")
    if failures:
        raise SystemExit("the twin's encoder disagrees with the packages:\n" + "\n".join(failures[:20]))
    write_json(out / "vectors.json", vectors, indent=None)
    return len(checks)


# ---------------------------------------------------------------- main


def recipe_key():
    h = hashlib.sha256()
    for path in (Path(__file__).resolve(), HERE / "reference.mjs"):
        h.update(path.read_bytes())
    h.update(json.dumps([NPM, SDIST, TEMPLATES]).encode())
    return h.hexdigest()


def build(out, cache, force=False):
    """Build into `out` unless its MANIFEST.json has the current recipe key. Returns (built?, manifest).
    Concurrent builds of the same `out` (parallel test runs) wait for each other on `out`.lock."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(out, Path(cache), force)


def _build(out, cache, force):
    key = recipe_key()
    manifest_path = out / "MANIFEST.json"
    if not force and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("recipe") == key:
            return False, manifest
    start = time.monotonic()
    llama_pkg, gpt_pkg = npm_package(cache, "llama3-tokenizer-js"), npm_package(cache, "gpt-tokenizer")
    templates = chat_templates(cache)
    fetched = time.monotonic()
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "encodings").mkdir(parents=True)
    encodings = {}
    for name, digest in PUBLISHED.items():
        data = (gpt_pkg / "data" / name).read_bytes()
        if sha256(data) != digest:
            raise SystemExit(f"gpt-tokenizer data/{name}: sha256 {sha256(data)}, expected the published {digest}")
        (staging / "encodings" / name).write_bytes(data)
        encodings[name] = data
    n_llama = build_llama3(staging, llama_pkg, templates["llama3"])
    n_oss = build_gpt_oss(staging, encodings["o200k_base.tiktoken"], templates["gpt-oss"])
    for kind, digest in PUBLISHED_TOKENIZER_JSON.items():
        got = sha256((staging / kind / "tokenizer.json").read_bytes())
        if got != digest:
            raise SystemExit(f"{kind}/tokenizer.json: sha256 {got}, not the published file's {digest}")
    converted = time.monotonic()
    n_checks = verify(staging, llama_pkg, gpt_pkg, encodings["o200k_base.tiktoken"], encodings["cl100k_base.tiktoken"])
    manifest = {
        "recipe": key,
        "npm": {name: {"version": v, "sha256": d} for name, (v, d) in NPM.items()},
        "pypi": {SDIST[0]: {"version": SDIST[1], "sha256": SDIST[2], "files": {k: v[0] for k, v in TEMPLATES.items()}}},
        "merges": {"llama3": n_llama, "gpt-oss": n_oss},
        "checks": n_checks,
        "seconds": {
            "fetch": round(fetched - start, 1),
            "convert": round(converted - fetched, 1),
            "verify": round(time.monotonic() - converted, 1),
        },
        "files": {
            str(p.relative_to(staging)): {"bytes": p.stat().st_size, "sha256": sha256(p.read_bytes())}
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        },
    }
    write_json(staging / "MANIFEST.json", manifest)
    shutil.rmtree(out, ignore_errors=True)
    staging.replace(out)
    return True, manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "tokenizers"))
    parser.add_argument("--cache", default=str(ROOT / "build" / "cache"))
    parser.add_argument("--force", action="store_true", help="rebuild even when the recipe is unchanged")
    args = parser.parse_args(argv)
    built, manifest = build(args.out, args.cache, args.force)
    if built:
        size = sum(f["bytes"] for f in manifest["files"].values())
        log(
            f"built {args.out} ({size / 1e6:.1f} MB; {manifest['checks']} verified encodings; "
            f"seconds {manifest['seconds']})"
        )
    else:
        log(f"{args.out} is current (recipe {manifest['recipe'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
