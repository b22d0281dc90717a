"""The simulated engine: a continuous-batching loop whose steps last what the timing model says.

Each step admits waiting requests (up to --max-num-seqs and the KV capacity), runs chunked prefill within
max_num_batched_tokens, advances every decoding request by one token (or 1 + accepted drafts with EAGLE3),
then hands each request its new text. Step deadlines are absolute and chained from the previous deadline (reset
only when idle), so sleep overshoot does not accumulate and a twin that cannot keep up shows as growing lag
(write_ns - model_ns in the trace); the loop learns its own overshoot and wakes that much early.
"""

import asyncio
import collections
import hashlib
import os
import random
import time

from vllm_twin import logfmt

BLOCK = 16


class Delta:
    __slots__ = ("finish_reason", "model_ns", "reasoning", "stop_reason", "text", "tokens")

    def __init__(self, text, tokens, finish_reason, stop_reason, model_ns, reasoning=""):
        self.text, self.tokens, self.finish_reason = text, tokens, finish_reason
        self.stop_reason, self.model_ns, self.reasoning = stop_reason, model_ns, reasoning


class Request:
    def __init__(self, prompt_ids, tokens, detok, max_tokens, min_tokens=0, stop=(), eos_id=None):
        self.prompt_ids, self.tokens, self.detok, self.max_tokens = prompt_ids, tokens, detok, max_tokens
        self.min_tokens, self.stop, self.eos_id = min_tokens, [s for s in stop if s], eos_id
        self.queue = asyncio.Queue()
        self.arrival = time.perf_counter()
        self.scheduled = self.first_token = self.last_token = self.finished_at = None
        self.prefill_left = len(prompt_ids)
        self.num_cached = 0  # prompt tokens served from the prefix cache (usage.prompt_tokens_details)
        self.num_output, self.text, self.reasoning = 0, "", ""
        self.done = False


class Engine:
    def __init__(self, tokenizer, timing, metrics, max_num_seqs, max_batched_tokens, kv_capacity_tokens, prefix_caching=True):
        self.tok, self.timing, self.metrics = tokenizer, timing, metrics
        self.max_num_seqs, self.max_batched = max_num_seqs, max_batched_tokens
        self.kv_capacity = kv_capacity_tokens
        self.prefix_caching = prefix_caching
        self.dead = False
        self.waiting, self.running = collections.deque(), []
        self.prefix_cache = collections.OrderedDict()
        self.rng = random.Random(0)
        self.overshoot = 0.0
        self.stats = collections.Counter()
        self._wake = asyncio.Event()
        self._task = None

    def start(self):
        self._task = asyncio.ensure_future(self._loop())

    def add(self, req):
        self.waiting.append(req)
        self._wake.set()

    def die(self):
        """EngineCore_0 is gone: nothing is scheduled any more and nothing more is reported (requests in
        flight stall, as their outputs never arrive)."""
        self.dead = True
        if self._task:
            self._task.cancel()

    def abort(self, req):
        if req.done:
            return
        if self.dead:
            req.done = True
            return
        if req in self.waiting:
            self.waiting.remove(req)
        elif req in self.running:
            self.running.remove(req)
        self._finish(req, "abort")

    def abort_all(self):
        for req in list(self.waiting) + list(self.running):
            self.abort(req)
            req.queue.put_nowait(Delta("", 0, "abort", None, time.perf_counter_ns()))

    @property
    def kv_used(self):
        return sum(len(r.prompt_ids) + r.num_output for r in self.running)

    def _admit(self, now):
        while self.waiting and len(self.running) < self.max_num_seqs:
            req = self.waiting[0]
            if self.running and self.kv_used + len(req.prompt_ids) + 1 > self.kv_capacity:
                break
            self.waiting.popleft()
            req.scheduled = now
            if self.prefix_caching:  # with --no-enable-prefix-caching nothing is looked up or counted
                hits = self._prefix_hits(req.prompt_ids)
                self.metrics.prefix(len(req.prompt_ids), hits)
                self.stats["prefix_queries"] += len(req.prompt_ids)
                self.stats["prefix_hits"] += hits
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
                self.metrics.step(0, 0, 0.0, 0)
                await self._wake.wait()
                deadline = None
            now = time.perf_counter()
            self._admit(now)
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
            self._step(decoding, prefill, deadline)

    async def _sleep_until(self, deadline):
        """Sleep until the deadline, waking early by the overshoot learnt from previous sleeps (no spinning)."""
        delay = deadline - time.perf_counter() - self.overshoot
        if delay > 0:
            await asyncio.sleep(delay)
            self.overshoot = min(0.005, max(0.0, self.overshoot + 0.2 * (time.perf_counter() - deadline)))

    def _step(self, decoding, prefill, deadline):
        model_ns = int(deadline * 1e9)
        emitted = prompt_done = 0
        for req in decoding:
            if req.done:
                continue
            self.metrics.inter_token(deadline - req.last_token)
            emitted += self._advance(req, self._spec_tokens(req), deadline, model_ns)
        for req, take in prefill:
            if req.done:
                continue
            req.prefill_left -= take
            if req.prefill_left == 0:
                prompt_done += len(req.prompt_ids)  # vLLM counts the whole prompt (cached or not) at its first token
                req.first_token = deadline
                self.metrics.ttft.observe(deadline - req.arrival)
                emitted += self._advance(req, 1, deadline, model_ns)
        self.stats["prompt_tokens"] += prompt_done
        self.stats["generation_tokens"] += emitted
        self.metrics.prompt_tokens.inc(prompt_done)
        self.metrics.generation_tokens.inc(emitted)
        self.running = [r for r in self.running if not r.done]
        self.metrics.step(len(self.running), len(self.waiting), min(1.0, self.kv_used / self.kv_capacity), prompt_done + emitted)

    def _spec_tokens(self, req):
        """1 + accepted draft tokens for this step (1 without speculative decoding)."""
        k = self.timing.k
        if not k:
            return 1
        accepted = 0
        while accepted < k and self.rng.random() < self.timing.accept:
            accepted += 1
        self.metrics.draft(k, accepted)
        self.stats["drafts"] += 1
        self.stats["draft_tokens"] += k
        self.stats["accepted"] += accepted
        for pos in range(accepted):
            self.stats[f"pos{pos}"] += 1
        return 1 + accepted

    def _advance(self, req, n, now, model_ns):
        """Generate up to n tokens for req and queue their text; returns how many were generated."""
        text, reasoning, count, finish, stop_reason = "", "", 0, None, None
        while count < n and finish is None:
            tid = next(req.tokens)
            if tid == req.eos_id and req.num_output < req.min_tokens:
                continue
            count += 1
            req.num_output += 1
            if tid == req.eos_id:
                finish = "stop"
                break
            field, piece = req.detok.feed(tid)
            if field == "reasoning_content":
                reasoning += piece
            else:
                text += piece
                if req.num_output >= req.min_tokens:
                    text, finish, stop_reason = self._check_stop(req, text)
            if finish is None and req.num_output >= req.max_tokens:
                finish = "length"
        req.text += text
        req.reasoning += reasoning
        req.last_token = now
        if finish:
            self._finish(req, finish)
        req.queue.put_nowait(Delta(text, count, finish, stop_reason, model_ns, reasoning))
        return count

    @staticmethod
    def _check_stop(req, text):
        """Stop strings end the request; the string itself is not part of the output."""
        for s in req.stop:
            cut = (req.text + text).find(s, max(0, len(req.text) - len(s)))
            if cut >= 0:
                return (req.text + text)[len(req.text) : cut], "stop", s
        return text, None, None

    def _finish(self, req, reason):
        req.done = True
        req.finished_at = time.perf_counter()
        self.metrics.finished(req, reason)


async def log_stats(engine):
    """`Engine 000: Avg prompt throughput…` (and `SpecDecoding metrics:`) every VLLM_LOG_STATS_INTERVAL seconds."""
    interval = float(os.environ.get("VLLM_LOG_STATS_INTERVAL", "10"))
    last, last_t, last_tput = collections.Counter(), time.perf_counter(), (0.0, 0.0)
    while True:
        await asyncio.sleep(interval)
        now, cur = time.perf_counter(), collections.Counter(engine.stats)
        delta, elapsed = cur - last, now - last_t
        tput = (delta["prompt_tokens"] / elapsed, delta["generation_tokens"] / elapsed)
        level = "DEBUG" if not any(tput) and not any(last_tput) else "INFO"
        hit_rate = 100.0 * delta["prefix_hits"] / delta["prefix_queries"] if delta["prefix_queries"] else 0.0
        logfmt.log(
            level,
            "loggers.py:123",
            "Engine %03d: Avg prompt throughput: %.1f tokens/s, Avg generation "
            "throughput: %.1f tokens/s, Running: %d reqs, Waiting: %d reqs, GPU KV cache usage: %.1f%%, "
            "Prefix cache hit rate: %.1f%%",
            0,
            tput[0],
            tput[1],
            len(engine.running),
            len(engine.waiting),
            100.0 * engine.kv_used / engine.kv_capacity,
            hit_rate,
        )
        if delta["drafts"]:
            k = engine.timing.k
            rates = ", ".join(f"{delta[f'pos{i}'] / delta['drafts']:.3f}" for i in range(k))
            logfmt.log(
                level,
                "metrics.py:87",
                "SpecDecoding metrics: Draft acceptance rate: %.1f%%, Mean acceptance "
                "length: %.2f, Accepted: %d tokens, Drafted: %d tokens, Per-position acceptance rate: %s",
                100.0 * delta["accepted"] / delta["draft_tokens"],
                1 + delta["accepted"] / delta["drafts"],
                delta["accepted"],
                delta["draft_tokens"],
                rates,
            )
        last, last_t, last_tput = cur, now, tput
