"""The twin's tokenizer: the model's own tokenizer.json, a real byte-level BPE (Llama 3's 128,000 tokens plus 256
specials, or o200k with the harmony specials for gpt-oss), encoded exactly as tiktoken and Hugging Face
`tokenizers` do, so a client that loads the same file counts the tokens the twin counts.

Pure standard library: the pre-tokenizer's \\p{L}/\\p{N}/\\p{M} classes are expanded from `unicodedata` into
explicit character classes for `re`, and `\\s` is Unicode White_Space (as in Rust's regex, which tiktoken and
`tokenizers` use). Chat prompts are rendered as vLLM 0.10.1.1 renders them: the Llama 3.1 chat template (its
plain-message branches), and for gpt-oss openai_harmony's conversation (system message with today's date, an
empty developer message, the messages, `<|start|>assistant`)."""

import datetime
import heapq
import itertools
import json
import re
import unicodedata


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: byte -> printable character, as in the tokenizer.json vocab."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    mapping, extra = {}, 0
    for b in range(256):
        if b in keep:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


BYTE_CHAR = bytes_to_unicode()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}
# byte-level string -> latin-1 string, whose .encode("latin-1") is the token's bytes
TO_LATIN1 = str.maketrans({c: chr(b) for b, c in BYTE_CHAR.items()})

# Unicode White_Space (Rust regex / Oniguruma \s); Python's \s would add U+001C-U+001F.
WHITE_SPACE = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
CONTRACTIONS = "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
CONTRACTIONS_ASCII = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_CLASSES = {}


def _escape(cp):
    return f"\\U{cp:08x}"


# Letters, numbers and marks all lie in planes 0-3 and (marks) plane 14; planes 4-13 are unassigned and 15-16
# private use, so the scan skips them (test_tokenizer checks this against a scan of every code point).
SCANNED = ((0, 0x40000), (0xE0000, 0xE1000))


def unicode_classes(spans=SCANNED):
    """{"L": "<ranges>", "Lu": ..., "N": ..., "M": ...}: bodies of character classes for `re`, built once."""
    if spans != SCANNED or not _CLASSES:
        runs, out = {}, {} if spans != SCANNED else _CLASSES
        for first, end in spans:
            start = first
            for cat, group in itertools.groupby(map(unicodedata.category, map(chr, range(first, end)))):
                n = sum(1 for _ in group)
                for key in (cat, cat[0]):
                    runs.setdefault(key, []).append((start, start + n - 1))
                start += n
        for key, spans in runs.items():
            merged = []
            for lo, hi in spans:
                if merged and merged[-1][1] + 1 == lo:
                    merged[-1] = (merged[-1][0], hi)
                else:
                    merged.append((lo, hi))
            out[key] = "".join(_escape(lo) if lo == hi else f"{_escape(lo)}-{_escape(hi)}" for lo, hi in merged)
        return out
    return _CLASSES


def translate_pattern(pattern):
    """A tiktoken / tokenizer.json split regex (\\p{..}, \\s, \\S, scoped (?i:)) as a stdlib `re` pattern."""
    classes = unicode_classes()
    pattern = pattern.replace(CONTRACTIONS, CONTRACTIONS_ASCII)
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1]
            if nxt == "p" and pattern[i + 2] == "{":
                end = pattern.index("}", i)
                body = classes[pattern[i + 3 : end]]
                out.append(body if in_class else f"[{body}]")
                i = end + 1
                continue
            if nxt == "s":
                out.append(WHITE_SPACE if in_class else f"[{WHITE_SPACE}]")
            elif nxt == "S" and not in_class:
                out.append(f"[^{WHITE_SPACE}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return re.compile("".join(out))


class BPE:
    """tiktoken's byte pair encoding: ranks (token bytes -> rank = id), a split regex, special tokens."""

    CACHE_LIMIT = 200_000

    def __init__(self, ranks, pattern, special):
        self.ranks, self.special = ranks, special
        self.split = translate_pattern(pattern).findall
        self.special_re = (
            re.compile("(" + "|".join(map(re.escape, sorted(special, key=len, reverse=True))) + ")") if special else None
        )
        self.cache = {}

    def encode_ordinary(self, text):
        ranks, cache, ids = self.ranks, self.cache, []
        for piece in self.split(text):
            found = cache.get(piece)
            if found is None:
                raw = piece.encode("utf-8", "surrogatepass")
                rank = ranks.get(raw)
                found = [rank] if rank is not None else self._merge(raw)
                if len(cache) >= self.CACHE_LIMIT:
                    cache.clear()
                cache[piece] = found
            ids.extend(found)
        return ids

    def encode(self, text):
        """Special tokens anywhere in the text are special (as Hugging Face tokenizers treat added tokens)."""
        if self.special_re is None:
            return self.encode_ordinary(text)
        ids = []
        for i, part in enumerate(self.special_re.split(text)):
            if i % 2:
                ids.append(self.special[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def _merge(self, raw):
        if len(raw) > 48:
            return self._merge_long(raw)
        ranks = self.ranks
        parts = [raw[i : i + 1] for i in range(len(raw))]
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                rank = ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best is None or rank < best):
                    best, at = rank, i
            if best is None:
                break
            parts[at : at + 2] = [parts[at] + parts[at + 1]]
        return [ranks[p] for p in parts]

    def _merge_long(self, raw):
        """The same merges in O(n log n) for long pieces (runs of spaces, long words): a heap of adjacent pairs
        keyed by (rank, position) over a linked list of parts."""
        ranks, n = self.ranks, len(raw)
        parts = [raw[i : i + 1] for i in range(n)]
        nxt, prv, alive = list(range(1, n + 1)), list(range(-1, n - 1)), [True] * n
        heap = []
        for i in range(n - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None:
                heap.append((rank, i, parts[i], parts[i + 1]))
        heapq.heapify(heap)
        while heap:
            rank, i, left, right = heapq.heappop(heap)
            j = nxt[i] if alive[i] else n
            if not alive[i] or j >= n or parts[i] != left or parts[j] != right:
                continue  # stale entry
            parts[i] = left + right
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[i] < n:
                prv[nxt[i]] = i
            for a in (prv[i], i):
                if a >= 0 and nxt[a] < n:
                    pair = parts[a] + parts[nxt[a]]
                    r = ranks.get(pair)
                    if r is not None:
                        heapq.heappush(heap, (r, a, parts[a], parts[nxt[a]]))
        out, i = [], 0
        while i < n:
            out.append(ranks[parts[i]])
            i = nxt[i]
        return out


def split_pattern(pre_tokenizer):
    """The Split regex of a tokenizer.json pre_tokenizer (Sequence[Split, ByteLevel] as Llama 3 and gpt-oss)."""
    items = pre_tokenizer.get("pretokenizers", [pre_tokenizer]) if pre_tokenizer else []
    for item in items:
        if item.get("type") == "Split":
            return item["pattern"]["Regex"]
    raise ValueError("tokenizer.json: no Split pre-tokenizer")


# Words the simulated answers are made of (each must be one token with a leading space in the vocab).
WORDS = """
the a an and or but of to in on for with at by from as is are was were be been being it its this that these
those there here which who what when where why how all any each every some many more most other such only own
same so than too very can will just should now also into over under again further then once about against
between through during before after above below up down out off new first last long great little right big
high different small large next early young important few public bad able robot robots robotics developer
developers edge device devices compute memory unified model models inference latency throughput token tokens
power efficient efficiency jetson thor nvidia gpu cpu cores platform performance real time sensor sensors camera
cameras perception planning control autonomous navigation vision language transformer local cloud network data
privacy safety reliable deploy deployment runtime software stack framework application applications engineer
engineers team teams workload workloads physical world humanoid learning simulation training fine tune
precision accuracy speed faster lower higher bandwidth battery thermal module kit board system systems pipeline
stream streams multiple concurrent parallel processing process processes result results benefit benefits main
key advantage because while without within across enables enable allows allow helps help provides provide
delivers deliver runs run supports support handles handle makes make gives give keeps keep means mean reduces
reduce improves improve increase increases decision decisions environment environments task tasks motion object
objects detection map maps path paths feedback loop loops response responses user users interface tool tools
code server servers service services request requests batch cache context window generation output input prompt
prompts answer answers question questions example examples step steps approach method methods solution solutions
problem problems challenge challenges design designs build builds test tests measure measured measurement
benchmark benchmarks workshop hardware compact single chip class leading modern advanced complex simple practical
useful powerful flexible scalable robust secure open source community ecosystem industry industrial factory
warehouse field mobile agents agent reasoning generative large
""".split()


def read_tokenizer_json(path):
    """tokenizer.json without its merges when they are the file's last entry (as Hugging Face writes it): the
    encoder needs only the vocabulary (rank = id), and gpt-oss's 446,189 merges triple the parse time."""
    text = path.read_text(encoding="utf-8")
    at = text.rfind('"merges":')
    if at > 0 and "".join(text[-64:].split()).endswith("]}}"):
        try:
            return json.loads(text[: text.rindex(",", 0, at)] + "}}")
        except ValueError:
            pass
    return json.loads(text)


class Tokenizer:
    def __init__(self, snapshot, vocab_size):
        data = read_tokenizer_json(snapshot / "tokenizer.json")
        config = json.loads((snapshot / "tokenizer_config.json").read_text(encoding="utf-8"))
        model = data["model"]
        self.vocab = model["vocab"]  # byte-level token string -> id, as in tokenizer.json
        self.special = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
        ranks = {token.translate(TO_LATIN1).encode("latin-1"): i for token, i in self.vocab.items()}
        self.bpe_pattern = split_pattern(data.get("pre_tokenizer"))
        self.bpe = BPE(ranks, self.bpe_pattern, self.special)
        size = max(vocab_size, max(self.special.values(), default=0) + 1, len(ranks))
        self.bytes_of = [b""] * size
        for raw, i in ranks.items():
            self.bytes_of[i] = raw
        for text, i in self.special.items():
            self.bytes_of[i] = text.encode()
        self.vocab_size = vocab_size
        self.bos, self.eos = config.get("bos_token"), config.get("eos_token")
        self.eos_id = self.special.get(self.eos)
        self.harmony = "<|start|>" in self.special
        self.special_ids = set(self.special.values())
        self.words = [i for i in (self.vocab.get("\u0120" + w) for w in WORDS) if i is not None]
        self.comma, self.period = self.vocab.get(","), self.vocab.get(".")

    @property
    def text_of(self):
        """id -> text of that token alone (specials: their content)."""
        return _TextOf(self)

    def encode(self, text):
        return self.bpe.encode(text)

    def decode(self, ids, skip_special_tokens=True):
        """The text of ids as Hugging Face's decode gives it (vLLM's /detokenize: skip_special_tokens=False);
        ids outside the vocabulary decode to nothing."""
        size, special = len(self.bytes_of), self.special_ids
        data = b"".join(
            self.bytes_of[i] for i in ids if 0 <= i < size and not (skip_special_tokens and i in special)
        )
        return data.decode("utf-8", "replace")

    def render_chat(self, messages, add_generation_prompt=True, reasoning_effort=None, today=None):
        if self.harmony:
            return render_harmony(messages, add_generation_prompt, reasoning_effort, today)
        return render_llama31(messages, add_generation_prompt, self.bos)


class _TextOf:
    def __init__(self, tok):
        self.tok = tok

    def get(self, i, default=None):
        if 0 <= i < len(self.tok.bytes_of) and (self.tok.bytes_of[i] or i in self.tok.special_ids):
            return self.tok.bytes_of[i].decode("utf-8", "replace")
        return default


def content_text(message):
    """vLLM's "string" content format: text parts joined by newlines."""
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return content


def render_llama31(messages, add_generation_prompt=True, bos="<|begin_of_text|>"):
    """What Llama 3.1's chat template renders without tools (date_string '26 Jul 2024')."""
    system = ""
    if messages and messages[0].get("role") == "system":
        system, messages = content_text(messages[0]).strip(), messages[1:]
    out = [
        f"{bos}<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        f"Today Date: 26 Jul 2024\n\n{system}<|eot_id|>"
    ]
    for m in messages:
        role = m.get("role")
        if role in ("tool", "ipython"):
            out.append(f"<|start_header_id|>ipython<|end_header_id|>\n\n{content_text(m)}<|eot_id|>")
        else:
            out.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{content_text(m).strip()}<|eot_id|>")
    if add_generation_prompt:
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


def render_harmony(messages, add_generation_prompt=True, reasoning_effort=None, today=None):
    """vLLM 0.10.1.1's gpt-oss chat prompt (serving_chat._make_request_with_harmony): openai_harmony's system
    message (model identity, knowledge cutoff, today's date, reasoning effort, channels), an empty developer
    message, each request message as <|start|>role<|message|>text<|end|>, then <|start|>assistant."""
    today = today or datetime.datetime.now().strftime("%Y-%m-%d")
    out = [
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        f"Knowledge cutoff: 2024-06\nCurrent date: {today}\n\nReasoning: {reasoning_effort or 'medium'}\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>",
        "<|start|>developer<|message|><|end|>",
    ]
    for m in messages:
        content = m.get("content") or ""
        text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append(f"<|start|>{m.get('role')}<|message|>{text}<|end|>")
    if add_generation_prompt:
        out.append("<|start|>assistant")
    return "".join(out)


class Detokenizer:
    """Incremental text of one request's tokens: the tokens' bytes, decoded as UTF-8 once a character is complete
    (vLLM's incremental detokenizer); special tokens render empty (skip_special_tokens). For gpt-oss chat
    (harmony) it follows the channel headers, so analysis text goes to reasoning_content and final text to
    content, as vLLM's harmony parser does."""

    def __init__(self, tok, harmony_chat=False):
        self.tok, self.parse = tok, harmony_chat and tok.harmony
        self.channel, self.expect, self.pending = None, None, b""

    def feed(self, token_id):
        """(field, text) for one token; field is "content" or "reasoning_content"."""
        special = self.tok.special
        if self.parse:
            if self.expect:
                if self.expect == "channel":
                    self.channel = self.tok.bytes_of[token_id].decode("utf-8", "replace")
                self.expect = None
                return "content", ""
            if token_id in (special.get("<|channel|>"), special.get("<|start|>")):
                self.expect = "channel" if token_id == special.get("<|channel|>") else "role"
                return "content", ""
        if token_id in self.tok.special_ids or not 0 <= token_id < len(self.tok.bytes_of):
            return "content", ""
        field = "reasoning_content" if self.channel == "analysis" else "content"
        data = self.pending + self.tok.bytes_of[token_id]
        cut = _complete_utf8(data)
        self.pending = data[cut:]
        return field, data[:cut].decode("utf-8", "replace")


def _complete_utf8(data):
    """Length of the prefix of data that does not end inside a UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b < 0x80:
            return len(data)
        if b >= 0xC0:
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)
