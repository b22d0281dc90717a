#!/usr/bin/env python3
"""Cross-check the twin's tokenizer against the real Python libraries (a development check, not a unit test:
it needs transformers, tokenizers, tiktoken, jinja2 and openai-harmony, which the unit image does not have).

    python -m venv /tmp/tokcheck && /tmp/tokcheck/bin/pip install transformers tiktoken openai-harmony jinja2
    /tmp/tokcheck/bin/python twin/content/tokenizers/check_reference.py [--tokenizers build/tokenizers] [-n 600]

- transformers' PreTrainedTokenizerFast loads the generated llama3/ and gpt-oss/ directories offline and must
  produce the twin's ids for the build's corpus plus n more random strings (unicode, numbers, whitespace runs,
  code, special tokens), and decode them back;
- tiktoken's o200k_base and cl100k_base, loaded from the generated .tiktoken files, must agree too;
- apply_chat_template (the real Llama 3.1 template) must render what the twin's render_chat renders for the
  workshop's message shapes, and openai_harmony's rendering of vLLM's gpt-oss prompt must give the twin's ids.
"""

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "twin" / "vllm"))
sys.path.insert(0, str(HERE))

import build_tokenizers

from vllm_twin.tokenizer import Tokenizer, content_text, render_harmony, render_llama31

CONVERSATIONS = [
    [{"role": "user", "content": "Write a 5-sentence paragraph about Jetson Thor for robotics developers."}],
    [{"role": "system", "content": "  You are a helpful assistant.\n"}, {"role": "user", "content": "Hi there!  "}],
    [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is FP4?"},
        {"role": "assistant", "content": "A 4-bit floating point format."},
        {"role": "user", "content": [{"type": "text", "text": "And FP8?"}, {"type": "text", "text": "Compare."}]},
    ],
    [{"role": "user", "content": "日本語のテキスト 🦙\n\n  code:\n    x = 1\n"}],
]


def random_strings(n, seed=7):
    rng = random.Random(seed)
    pool = [*build_tokenizers.POOL, "<|eot_id|>", "<|start_header_id|>", "<|begin_of_text|>"]
    out = []
    for _ in range(n):
        parts = [rng.choice(pool) for _ in range(rng.randint(1, 20))]
        out.append("".join(p + rng.choice(build_tokenizers.SEPARATORS) for p in parts))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizers", default=str(ROOT / "build" / "tokenizers"))
    parser.add_argument("-n", type=int, default=600)
    args = parser.parse_args()
    base = Path(args.tokenizers)
    from transformers import PreTrainedTokenizerFast

    texts = json.loads((base / "vectors.json").read_text())["corpus"] + random_strings(args.n)
    failures, checked = [], 0
    for kind, size in (("llama3", 128256), ("gpt-oss", 201088)):
        twin = Tokenizer(base / kind, size)
        hf = PreTrainedTokenizerFast.from_pretrained(str(base / kind), local_files_only=True)
        for text in texts:
            if kind == "gpt-oss":
                text = text.replace("<|eot_id|>", "<|end|>").replace("<|start_header_id|>", "<|start|>")
            ids = hf.encode(text, add_special_tokens=False)
            checked += 1
            if ids != twin.encode(text):
                failures.append((kind, text, ids, twin.encode(text)))
            elif hf.decode(ids) != twin.decode(ids, skip_special_tokens=False):
                failures.append((kind, "decode", text, hf.decode(ids)))
        for messages in CONVERSATIONS:
            if kind == "llama3":
                flat = [{**m, "content": content_text(m)} for m in messages]
                want = hf.apply_chat_template(flat, tokenize=False, add_generation_prompt=True)
                checked += 1
                if want != render_llama31(messages):
                    failures.append((kind, "chat template", want, render_llama31(messages)))
    import tiktoken

    for name, pattern in (("o200k_base", build_tokenizers.O200K_PATTERN), ("cl100k_base", build_tokenizers.LLAMA3_PATTERN)):
        data = (base / "encodings" / f"{name}.tiktoken").read_bytes()
        ranks = build_tokenizers.tiktoken_ranks(data)
        enc = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
        bpe = build_tokenizers.BPE(ranks, pattern, {})
        for text in texts:
            checked += 1
            if enc.encode_ordinary(text) != bpe.encode(text):
                failures.append((name, text, enc.encode_ordinary(text), bpe.encode(text)))
    import os

    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(base / "encodings")
    from openai_harmony import (
        Conversation,
        DeveloperContent,
        HarmonyEncodingName,
        Message,
        Role,
        SystemContent,
        TextContent,
        load_harmony_encoding,
    )

    enc = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    twin = Tokenizer(base / "gpt-oss", 201088)
    for messages in CONVERSATIONS:
        convo = [
            Message.from_role_and_content(Role.SYSTEM, SystemContent.new().with_conversation_start_date("2026-12-02")),
            Message.from_role_and_content(Role.DEVELOPER, DeveloperContent.new()),
        ]
        for m in messages:
            content = m["content"]
            parts = [TextContent(text=content)] if isinstance(content, str) else [TextContent(text=p["text"]) for p in content]
            convo.append(Message.from_role_and_contents(Role(m["role"]), parts))
        want = enc.render_conversation_for_completion(Conversation.from_messages(convo), Role.ASSISTANT)
        got = twin.encode(render_harmony(messages, today="2026-12-02"))
        checked += 1
        if list(want) != got:
            failures.append(("harmony", messages, enc.decode(want), render_harmony(messages, today="2026-12-02")))
    for failure in failures[:20]:
        print("MISMATCH", failure)
    print(f"{checked} checks, {len(failures)} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
