"""Deterministic simulated output: at temperature 0 the tokens are a function of (prompt, weights family).

bf16 and fp8 checkpoints of a model give identical text; 4-bit (NVFP4) changes the word at a few positions
(about 1 in 23), the same ones every time; speculative decoding never changes text (it is lossless).
With temperature > 0 a per-request random seed (or the request's `seed`) is mixed in.
"""

import hashlib
import random


def _h(*parts):
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


# What a gpt-oss answer starts with, and what separates its analysis channel from its final channel.
HARMONY_HEADER = (
    *("<|channel|>", "analysis", "<|message|>"),
    *("<|end|>", "<|start|>", "assistant", "<|channel|>", "final", "<|message|>"),
)


def generation_vocab(tok):
    """The few token ids that text generation needs, as plain JSON data: the API server builds the tokenizer and
    sends this to EngineCore_0, which generates token ids only (detokenizing is the front end's job, as in V1)."""
    header = [tok.special.get(t) if t.startswith("<|") else tok.vocab.get(t) for t in HARMONY_HEADER]
    return {
        "words": list(tok.words),
        "comma": tok.comma,
        "period": tok.period,
        "eos_id": tok.eos_id,
        "harmony_header": header if tok.harmony and None not in header else None,
    }


class TextGen:
    def __init__(self, vocab, spec):
        """vocab: a Tokenizer, or generation_vocab() of one (in EngineCore_0)."""
        self.vocab = vocab if isinstance(vocab, dict) else generation_vocab(vocab)
        self.family, self.perturbed = spec.family, spec.perturbed

    def base(self, prompt_ids, temperature, seed):
        base = hashlib.blake2b(repr((self.family, prompt_ids)).encode(), digest_size=16).hexdigest()
        if temperature and temperature > 0:
            base += f":{seed if seed is not None else random.getrandbits(64)}"
        return base

    def natural_length(self, base):
        """Where the model would emit EOS (it finishes the sentence it is in first)."""
        return 48 + _h(base, "eos") % 400

    def tokens(self, base, ignore_eos=False):
        """An endless stream of token ids; EOS appears once (unless ignore_eos) at the end of a sentence.
        gpt-oss (harmony) answers start with an analysis channel and switch to the final channel."""
        v = self.vocab
        words, comma, header = v["words"], v["comma"], v["harmony_header"]
        harmony = header is not None
        eos_at = self.natural_length(base)
        final_at = eos_at // 3 if harmony else -1
        if harmony:
            yield from header[:3]
        i, sentence = (3 if harmony else 0), 0
        while True:
            n = 6 + _h(base, "len", sentence) % 14
            at_comma = n // 2 if _h(base, "comma", sentence) % 3 == 0 else -1
            for j in range(n):
                variant = "fp4" if self.perturbed and _h(base, "p", i) % 23 == 0 else ""
                yield words[_h(base, variant, i) % len(words)]
                i += 1
                if j == at_comma and comma is not None:
                    yield comma
                    i += 1
            yield v["period"]
            i += 1
            sentence += 1
            if final_at >= 0 and i >= final_at:
                yield from header[3:]
                i += 6
                final_at = -1
            if i >= eos_at and not ignore_eos and v["eos_id"] is not None:
                yield v["eos_id"]
                ignore_eos = True
