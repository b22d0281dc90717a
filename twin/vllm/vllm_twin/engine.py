"""EngineCore_0's busy loop: continuous batching whose steps last what the timing model says.

It runs in the EngineCore_0 process (enginecore.serve), apart from the API server, as in vLLM V1: the front end
sends requests as token ids and gets back, once per step, each request's new token ids (engine_client.py turns
them into text, checks stop strings and writes the responses). So the engine's clock never waits for HTTP work.

Each step admits waiting requests (up to --max-num-seqs and the KV capacity), runs chunked prefill within
max_num_batched_tokens, advances every decoding request by one token (or 1 + accepted drafts with EAGLE3), and
sends one message with the step's outputs and scheduler stats. Step deadlines are absolute and chained from the
previous deadline (reset only when idle), so sleep overshoot does not accumulate and a twin that cannot keep up
shows as growing lag (write_ns - model_ns in the trace); the loop learns its own overshoot and wakes that much early.
"""

import asyncio
import collections
import hashlib
import random
import time

BLOCK = 16


class EngineRequest:
    """What EngineCore knows of a request: token ids, limits and where it is in prefill and decode."""

    __slots__ = (
        "eos_id", "finished", "max_tokens", "min_tokens", "num_cached", "num_output", "prefill_left", "prompt_ids", "rid",
        "scheduled", "tokens",
    )  # fmt: skip

    def __init__(self, rid, prompt_ids, tokens, max_tokens, min_tokens=0, eos_id=None):
        self.rid, self.prompt_ids, self.tokens = rid, prompt_ids, tokens
        self.max_tokens, self.min_tokens, self.eos_id = max_tokens, min_tokens, eos_id
        self.prefill_left = len(prompt_ids)
        self.num_cached = self.num_output = 0
        self.scheduled, self.finished = None, False


class Engine:
    """emit(message) is called once per step with {"t": the step's model time (perf_counter seconds), "sent": when
    it was emitted, "out": [[rid, new token ids, finish reason or None, scheduled time or None, cached tokens or
    None]...], and the scheduler stats}."""

    def __init__(self, timing, emit, max_num_seqs, max_batched_tokens, kv_capacity_tokens, prefix_caching=True):
        self.timing, self.emit = timing, emit
        self.max_num_seqs, self.max_batched = max_num_seqs, max_batched_tokens
        self.kv_capacity = kv_capacity_tokens
        self.prefix_caching = prefix_caching
        self.waiting, self.running = collections.deque(), []
        self.prefix_cache = collections.OrderedDict()
        self.rng = random.Random(0)
        self.overshoot = 0.0
        self._wake = asyncio.Event()
        self._task = None

    def start(self):
        self._task = asyncio.ensure_future(self._loop())

    def add(self, req):
        self.waiting.append(req)
        self._wake.set()

    def abort(self, rid):
        """The front end is done with rid (finished by a stop string, client gone, shutdown): drop it quietly."""
        self.waiting = collections.deque(r for r in self.waiting if r.rid != rid)
        self.running = [r for r in self.running if r.rid != rid]

    @property
    def kv_used(self):
        return sum(len(r.prompt_ids) + r.num_output for r in self.running)

    def _admit(self, now, prefix):
        while self.waiting and len(self.running) < self.max_num_seqs:
            req = self.waiting[0]
            if self.running and self.kv_used + len(req.prompt_ids) + 1 > self.kv_capacity:
                break
            self.waiting.popleft()
            req.scheduled = now
            if self.prefix_caching:  # with --no-enable-prefix-caching nothing is looked up or counted
                hits = self._prefix_hits(req.prompt_ids)
                prefix[0] += len(req.prompt_ids)
                prefix[1] += hits
                req.num_cached = hits
            req.prefill_left = max(1, len(req.prompt_ids) - req.num_cached)
            self.running.append(req)

    def _prefix_hits(self, ids):
        """vLLM's prefix cache on 16-token blocks: leading blocks seen before are not prefilled again. At most
        len - 1 tokens can hit (the last one is always computed, for its logits), in whole blocks."""
        hits, h = 0, hashlib.blake2b(digest_size=8)
        still_hitting = True
        for start in range(0, len(ids) - len(ids) % BLOCK, BLOCK):
            h.update(repr(ids[start : start + BLOCK]).encode())
            key = h.digest()
            if still_hitting and key in self.prefix_cache and start + BLOCK <= len(ids) - 1:
                hits += BLOCK
                self.prefix_cache.move_to_end(key)
            else:
                still_hitting = False
                self.prefix_cache[key] = True
        while len(self.prefix_cache) > self.kv_capacity // BLOCK:
            self.prefix_cache.popitem(last=False)
        return hits

    async def _loop(self):
        deadline = None
        while True:
            if not self.running and not self.waiting:
                self._wake.clear()
                self.emit({"t": time.perf_counter(), "out": [], "running": 0, "waiting": 0, "kv": 0.0, "iteration_tokens": 0})
                await self._wake.wait()
                deadline = None
            now = time.perf_counter()
            prefix = [0, 0]  # prompt tokens looked up in the prefix cache, and hits
            self._admit(now, prefix)
            decoding = [r for r in self.running if r.prefill_left == 0]
            budget = self.max_batched - len(decoding) * (1 + self.timing.k)
            prefill = []
            for req in self.running:
                if req.prefill_left and budget > 0:
                    take = min(req.prefill_left, budget)
                    prefill.append((req, take))
                    budget -= take
            prefill_tokens = sum(t for _, t in prefill)
            duration = self.timing.step_seconds(len(decoding), prefill_tokens)
            deadline = (now if deadline is None else deadline) + duration
            await self._sleep_until(deadline)
            self._step(decoding, prefill, deadline, prefix)

    async def _sleep_until(self, deadline):
        """Sleep until the deadline, waking early by the overshoot learnt from previous sleeps, then sleep out the
        rest without the event loop (this process does nothing else), so that a step never ends before its time."""
        delay = deadline - time.perf_counter() - self.overshoot
        if delay > 0:
            await asyncio.sleep(delay)
            self.overshoot = min(0.005, max(0.0, self.overshoot + 0.2 * (time.perf_counter() - deadline)))
        early = deadline - time.perf_counter()
        if early > 0:
            time.sleep(early)

    def _step(self, decoding, prefill, deadline, prefix):
        out, drafts, emitted, prompt_done = [], [], 0, 0
        for req in decoding:
            if req in self.running:  # not aborted while this step ran
                n = self._spec_tokens(drafts)
                emitted += self._advance(req, n, out)
        for req, take in prefill:
            if req not in self.running:
                continue
            req.prefill_left -= take
            if req.prefill_left == 0:
                prompt_done += len(req.prompt_ids)  # vLLM counts the whole prompt (cached or not) at its first token
                emitted += self._advance(req, 1, out)
        self.running = [r for r in self.running if not r.finished]
        self.emit(
            {
                "t": deadline,
                "out": out,
                "running": len(self.running),
                "waiting": len(self.waiting),
                "kv": min(1.0, self.kv_used / self.kv_capacity),
                "iteration_tokens": prompt_done + emitted,
                "prompt_tokens": prompt_done,
                "generation_tokens": emitted,
                "prefix": prefix,
                "drafts": drafts,
            }
        )

    def _spec_tokens(self, drafts):
        """1 + accepted draft tokens for this step (1 without speculative decoding); drafts gets the accepted count."""
        k = self.timing.k
        if not k:
            return 1
        accepted = 0
        while accepted < k and self.rng.random() < self.timing.accept:
            accepted += 1
        drafts.append(accepted)
        return 1 + accepted

    def _advance(self, req, n, out):
        """Generate up to n token ids for req (EOS honours min_tokens; max_tokens ends it with "length")."""
        ids, finish = [], None
        while len(ids) < n and finish is None:
            tid = next(req.tokens)
            if tid == req.eos_id and req.num_output < req.min_tokens:
                continue
            ids.append(tid)
            req.num_output += 1
            if tid == req.eos_id:
                finish = "stop"
            elif req.num_output >= req.max_tokens:
                finish = "length"
        req.finished = finish is not None
        if len(ids) == req.num_output:  # its first output: when it was scheduled, and its prefix-cache hits
            out.append([req.rid, ids, finish, req.scheduled, req.num_cached])
        else:
            out.append([req.rid, ids, finish])
        return len(ids)
