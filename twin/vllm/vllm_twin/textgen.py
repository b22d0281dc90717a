"""Deterministic simulated output: at temperature 0 the tokens are a function of (prompt, weights family).

bf16 and fp8 checkpoints of a model give identical text; 4-bit (NVFP4) changes the word at a few positions
(about 1 in 23), the same ones every time; speculative decoding never changes text (it is lossless).
With temperature > 0 a per-request random seed (or the request's `seed`) is mixed in.
"""

import hashlib
import random


def _h(*parts):
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


class TextGen:
    def __init__(self, tokenizer, spec):
        self.tok, self.family, self.perturbed = tokenizer, spec.family, spec.perturbed

    def base(self, prompt_ids, temperature, seed):
        base = hashlib.blake2b(repr((self.family, prompt_ids)).encode(), digest_size=16).hexdigest()
        if temperature and temperature > 0:
            base += f":{seed if seed is not None else random.getrandbits(64)}"
        return base

    def natural_length(self, base):
        """Where the model would emit EOS (it finishes the sentence it is in first)."""
        return 48 + _h(base, "eos") % 400

    def tokens(self, base, ignore_eos=False):
        """An endless stream of token ids; EOS appears once (unless ignore_eos) at the end of a sentence."""
        words, i, sentence = self.tok.words, 0, 0
        eos_at = self.natural_length(base)
        while True:
            n = 6 + _h(base, "len", sentence) % 14
            comma = n // 2 if _h(base, "comma", sentence) % 3 == 0 else -1
            for j in range(n):
                variant = "fp4" if self.perturbed and _h(base, "p", i) % 23 == 0 else ""
                yield words[_h(base, variant, i) % len(words)]
                i += 1
                if j == comma and self.tok.comma is not None:
                    yield self.tok.comma
                    i += 1
            yield self.tok.period
            i += 1
            sentence += 1
            if i >= eos_at and not ignore_eos and self.tok.eos_id is not None:
                yield self.tok.eos_id
                ignore_eos = True
