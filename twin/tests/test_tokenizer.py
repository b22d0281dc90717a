"""The twin's tokenizer: real Llama 3 and o200k (harmony) BPE, checked against the registry packages' own test
vectors and their ids for a varied corpus (build/tokenizers/vectors.json, computed by the packages at build
time), chat rendering as vLLM does it, incremental detokenization, and speed."""

import base64
import json
import random
import time
import types

import pytest

from twin_support import GPT_OSS, LLAMA, ROOT
from vllm_twin import tokenizer as T
from vllm_twin.textgen import TextGen


def snapshot(hub, repo_id):
    return next((hub / "hub" / ("models--" + repo_id.replace("/", "--")) / "snapshots").iterdir())


@pytest.fixture(scope="module")
def tokenizers(hub):
    return T.Tokenizer(snapshot(hub, LLAMA), 128256), T.Tokenizer(snapshot(hub, GPT_OSS), 201088)


def vectors():
    return json.loads((ROOT / "build" / "tokenizers" / "vectors.json").read_text())


def test_package_test_vectors(hub, tokenizers):
    llama, oss = tokenizers
    v = vectors()
    assert len(v["llama3_package_tests"]) >= 14 and len(v["testplans"]["o200k_base"]) >= 50
    for text, ids in v["llama3_package_tests"]:
        assert llama.encode(text) == ids, text
    for text, ids in v["testplans"]["o200k_base"]:
        assert oss.encode(text) == ids, text
    ranks = {}
    for line in (hub / "encodings" / "cl100k_base.tiktoken").read_bytes().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    cl100k = T.BPE(ranks, llama.bpe_pattern, {})
    for text, ids in v["testplans"]["cl100k_base"]:
        assert cl100k.encode(text) == ids, text


def test_corpus_ids_match_the_packages_and_decode_back(tokenizers):
    llama, oss = tokenizers
    v = vectors()
    assert len(v["corpus"]) == 400
    for text, want_llama, want_oss in zip(v["corpus"], v["llama3"], v["o200k_base"], strict=True):
        assert llama.encode(text) == want_llama, text
        assert oss.encode(text) == want_oss, text
        assert llama.decode(want_llama) == text and oss.decode(want_oss) == text


def test_special_tokens_and_known_ids(tokenizers):
    llama, oss = tokenizers
    assert llama.encode("Jetson Thor is fast.") == [36741, 942, 29550, 374, 5043, 13]
    assert llama.encode("<|start_header_id|>user<|end_header_id|>") == [128006, 882, 128007]
    assert llama.eos_id == 128009 and llama.special[llama.bos] == 128000 and not llama.harmony
    assert oss.harmony and oss.eos_id == 200002 and oss.bos == "<|startoftext|>"
    assert oss.encode("<|start|>assistant<|channel|>final<|message|>Hi<|end|>") == [
        200006, 173781, 200005, 17196, 200008, 12194, 200007,
    ]
    assert llama.decode([128000, 40, 128009, 10**7]) == "I"
    assert llama.decode([128000, 40, 128009], skip_special_tokens=False) == "<|begin_of_text|>I<|eot_id|>"
    assert len(llama.vocab) == 128000 and len(llama.special) == 256
    assert len(oss.vocab) == 199998 and len(oss.special) == 21
    for tok in (llama, oss):
        assert len(tok.words) > 300 and all(tok.bytes_of[i].startswith(b" ") for i in tok.words)
        assert tok.decode([tok.comma, tok.period]) == ",."


def test_unicode_classes_cover_every_code_point():
    import sys

    full = T.unicode_classes(((0, sys.maxunicode + 1),))
    for key in ("L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "N"):
        assert T.unicode_classes()[key] == full[key], key


def test_pre_tokenizer_uses_unicode_white_space():
    split = T.translate_pattern(r"\s+(?!\S)|\s+|[^\s\p{L}\p{N}]+").findall
    assert split("a\x1cb") == ["\x1c"]  # U+001C is not White_Space (Python's \s would say it is)
    assert split("\x85\u3000") == ["\x85\u3000"]
    digits = T.translate_pattern(r"\p{N}{1,3}").findall
    assert digits("12345 ²³ Ⅻ ①") == ["123", "45", "²³", "Ⅻ", "①"]


def test_long_pieces_merge_like_short_ones(tokenizers):
    llama, _ = tokenizers
    rng = random.Random(3)
    alphabet = ["a", "b", "e", "t", " ", "ab", "é", "日", "🦙", "0", "\n"]
    for _ in range(80):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(49, 120))).encode()
        parts = [raw[i : i + 1] for i in range(len(raw))]
        ranks = llama.bpe.ranks
        while len(parts) > 1:
            pairs = [(ranks.get(parts[i] + parts[i + 1]), i) for i in range(len(parts) - 1)]
            pairs = [p for p in pairs if p[0] is not None]
            if not pairs:
                break
            _, at = min(pairs)
            parts[at : at + 2] = [parts[at] + parts[at + 1]]
        assert llama.bpe._merge(raw) == [ranks[p] for p in parts]


def test_llama_chat_rendering_is_the_31_template():
    messages = [
        {"role": "system", "content": "  Be brief.\n"},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there "}]},
    ]
    assert T.render_llama31(messages) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi\nthere<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert T.render_llama31([{"role": "user", "content": "x"}], add_generation_prompt=False).endswith("x<|eot_id|>")


def test_harmony_chat_rendering_is_vllms():
    text = T.render_harmony([{"role": "user", "content": "Hi"}], today="2026-12-02")
    assert text == (
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2026-12-02\n\nReasoning: medium\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>developer<|message|><|end|><|start|>user<|message|>Hi<|end|><|start|>assistant"
    )


def test_detokenizer_is_incremental_utf8_and_follows_harmony_channels(tokenizers):
    llama, oss = tokenizers
    d = T.Detokenizer(llama)
    assert [d.feed(t) for t in [9468, 99, 247, 128009, 374]] == [
        ("content", ""),
        ("content", ""),
        ("content", "🦙"),
        ("content", ""),
        ("content", " is"),
    ]
    ids = oss.encode("<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Answer.")
    d = T.Detokenizer(oss, harmony_chat=True)
    fields = [d.feed(t) for t in ids]
    assert "".join(t for f, t in fields if f == "reasoning_content") == "Think."
    assert "".join(t for f, t in fields if f == "content") == "Answer."
    assert "".join(T.Detokenizer(oss).feed(t)[1] for t in ids) == "analysisThink.assistantfinalAnswer."


def test_generated_text_re_encodes_to_the_same_tokens(tokenizers):
    """What a client counts in the answer text is what the twin generated (no [UNK], no merges across words)."""
    llama, _ = tokenizers
    for family, perturbed in (("llama", False), ("llama", True)):
        gen = TextGen(llama, types.SimpleNamespace(family=family, perturbed=perturbed))
        for prompt in ("a", "b", "c"):
            stream = gen.tokens(gen.base(llama.encode(prompt), 0, None), ignore_eos=True)
            ids = [next(stream) for _ in range(300)]
            d = T.Detokenizer(llama)
            text = "".join(d.feed(t)[1] for t in ids)
            assert llama.encode(text) == ids


def test_encoding_a_2000_token_prompt_is_fast(tokenizers):
    llama, oss = tokenizers
    rng = random.Random(5)
    words = [llama.decode([i]) for i in rng.sample(range(1000, 100000), 3000)]
    text = "".join(words)[:9000]
    for tok in (llama, oss):
        best = 1.0
        for _ in range(3):
            tok.bpe.cache.clear()
            start = time.perf_counter()
            n = len(tok.encode(text))
            best = min(best, time.perf_counter() - start)
        assert n > 1500 and best < 0.1, (n, best)
