"""The twin's tokenizer: the model's own tokenizer.json (a WordLevel vocab with a Whitespace pre-tokenizer),
so a client that loads the same file with `tokenizers` counts the same tokens. Chat templates are rendered
the way the model's template does (Llama 3.1 or harmony)."""

import hashlib
import json
import re

SPLIT = re.compile(r"\w+|[^\w\s]+")


class Tokenizer:
    def __init__(self, snapshot, vocab_size):
        data = json.loads((snapshot / "tokenizer.json").read_text())
        config = json.loads((snapshot / "tokenizer_config.json").read_text())
        self.vocab = data["model"]["vocab"]
        self.special = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
        self.text_of = {i: t for t, i in self.vocab.items()}
        self.text_of.update({i: t for t, i in self.special.items()})
        self.special_re = re.compile("(" + "|".join(map(re.escape, self.special)) + ")") if self.special else None
        self.vocab_size = vocab_size
        self.bos, self.eos = config.get("bos_token"), config.get("eos_token")
        self.eos_id = self.special.get(self.eos)
        self.harmony = "<|start|>" in self.special
        self.special_ids = set(self.special.values())
        self.words = sorted(i for t, i in self.vocab.items() if t.isalpha())
        self.comma, self.period = self.vocab.get(","), self.vocab.get(".")

    def _word_id(self, word):
        found = self.vocab.get(word)
        if found is not None:
            return found
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        return len(self.vocab) + int.from_bytes(digest, "little") % max(1, self.vocab_size - len(self.vocab) - 1024)

    def encode(self, text):
        pieces = self.special_re.split(text) if self.special_re else [text]
        ids = []
        for piece in pieces:
            if piece in self.special:
                ids.append(self.special[piece])
            else:
                ids.extend(self._word_id(w) for w in SPLIT.findall(piece))
        return ids

    def render_chat(self, messages, add_generation_prompt=True):
        def content(m):
            c = m.get("content") or ""
            if isinstance(c, list):
                c = "".join(part.get("text", "") for part in c if isinstance(part, dict))
            return c

        if self.harmony:
            out = (
                "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
                "Knowledge cutoff: 2024-06\n\nReasoning: medium\n\n# Valid channels: analysis, commentary, final. "
                "Channel must be included for every message.<|end|>"
            )
            out += "".join(f"<|start|>{m['role']}<|message|>{content(m)}<|end|>" for m in messages)
            return out + ("<|start|>assistant" if add_generation_prompt else "")
        system = ""
        if messages and messages[0].get("role") == "system":
            system, messages = content(messages[0]).strip(), messages[1:]
        out = (
            f"{self.bos}<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            f"Today Date: 26 Jul 2024\n\n{system}<|eot_id|>"
        )
        out += "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{content(m).strip()}<|eot_id|>" for m in messages)
        return out + ("<|start_header_id|>assistant<|end_header_id|>\n\n" if add_generation_prompt else "")


class Detokenizer:
    """Incremental text of one request's tokens. Words carry a leading space except at the start of a channel;
    special tokens render empty. For gpt-oss chat (harmony) it follows the channel headers, so analysis text
    goes to reasoning_content and final text to content, as vLLM's harmony parser does."""

    def __init__(self, tok, harmony_chat=False):
        self.tok, self.parse = tok, harmony_chat and tok.harmony
        self.channel, self.expect, self.started = None, None, False

    def feed(self, token_id):
        """(field, text) for one token; field is "content" or "reasoning_content"."""
        special = self.tok.special
        if self.parse:
            if self.expect:
                if self.expect == "channel":
                    self.channel, self.started = self.tok.text_of.get(token_id), False
                self.expect = None
                return "content", ""
            if token_id in (special.get("<|channel|>"), special.get("<|start|>")):
                self.expect = "channel" if token_id == special.get("<|channel|>") else "role"
                return "content", ""
        if token_id in self.tok.special_ids:
            return "content", ""
        text = self.tok.text_of.get(token_id, "")
        piece = " " + text if self.started and text.isalnum() else text
        self.started = True
        return ("reasoning_content" if self.channel == "analysis" else "content"), piece
