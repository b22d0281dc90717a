"""The API server's side of the engine (vLLM V1's AsyncLLM + OutputProcessor): it sends requests to EngineCore_0
over a socket pair and turns each step's token ids into text for the waiting responses.

Detokenizing, stop strings, the per-request metrics (TTFT, inter-token, e2e...) and the `Engine 000:` stats log
happen here, in the front end, from the engine's step times, as in vLLM V1. One JSON line per message each way.
"""

import asyncio
import collections
import json
import os
import time

from vllm_twin import logfmt


class Delta:
    """One chunk of a request's output, as the response writer gets it: model_ns is the engine step's time in the
    timing model, engine_ns when EngineCore_0 actually sent the step (perf_counter_ns, one clock for both processes)."""

    __slots__ = ("engine_ns", "finish_reason", "model_ns", "reasoning", "stop_reason", "text", "tokens")

    def __init__(self, text, tokens, finish_reason, stop_reason, model_ns, reasoning="", engine_ns=None):
        self.text, self.tokens, self.finish_reason = text, tokens, finish_reason
        self.stop_reason, self.model_ns, self.reasoning = stop_reason, model_ns, reasoning
        self.engine_ns = model_ns if engine_ns is None else engine_ns


class Request:
    """A request as the front end follows it: its text so far, its timestamps (the engine's step times) and the
    queue its response reads deltas from."""

    def __init__(self, prompt_ids, base, ignore_eos, detok, max_tokens, min_tokens=0, stop=()):
        self.prompt_ids, self.base, self.ignore_eos, self.detok = prompt_ids, base, ignore_eos, detok
        self.max_tokens, self.min_tokens, self.stop = max_tokens, min_tokens, [s for s in stop if s]
        self.queue = asyncio.Queue()
        self.rid = None
        self.arrival = time.perf_counter()
        self.scheduled = self.first_token = self.last_token = self.finished_at = None
        self.num_cached = 0  # prompt tokens served from the prefix cache (usage.prompt_tokens_details)
        self.num_output, self.text, self.reasoning = 0, "", ""
        self.done = False


class EngineClient:
    def __init__(self, sock, metrics, gen_vocab, k):
        self.sock, self.metrics, self.gen_vocab, self.k = sock, metrics, gen_vocab, k
        self.requests = {}  # rid -> Request, until finished
        self.stats = collections.Counter()
        self.num_running = self.num_waiting = 0
        self.kv_usage = 0.0
        self.dead = False
        self._ids = 0
        self._writer = self._task = None

    async def start(self):
        reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)
        self._send({"op": "init", "vocab": self.gen_vocab})
        self._task = asyncio.ensure_future(self._read(reader))

    def _send(self, msg):
        if not self.dead and self._writer is not None:
            self._writer.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def add(self, req, eos_id):
        self._ids += 1
        req.rid = self._ids
        self.requests[req.rid] = req
        self._send(
            {
                "op": "add",
                "rid": req.rid,
                "prompt": req.prompt_ids,
                "base": req.base,
                "ignore_eos": req.ignore_eos,
                "max_tokens": req.max_tokens,
                "min_tokens": req.min_tokens,
                "eos_id": eos_id,
            }
        )

    def abort(self, req):
        """The response is over before the engine finished it (client gone, or a stop string matched)."""
        if req.done:
            return
        self._finish(req, "abort", time.perf_counter())
        self._send({"op": "abort", "rid": req.rid})

    def abort_all(self):
        for req in list(self.requests.values()):
            self.abort(req)
            req.queue.put_nowait(Delta("", 0, "abort", None, time.perf_counter_ns()))

    def die(self):
        """EngineCore_0 is gone: nothing more is reported (requests in flight stall, as their outputs never come)."""
        self.dead = True
        if self._task:
            self._task.cancel()

    async def _read(self, reader):
        while line := await reader.readline():
            self._on_step(json.loads(line))

    def _on_step(self, msg):
        t = msg["t"]
        self.num_running, self.num_waiting, self.kv_usage = msg["running"], msg["waiting"], msg["kv"]
        self.metrics.step(msg["running"], msg["waiting"], msg["kv"], msg["iteration_tokens"])
        if not msg["out"]:
            return
        queries, hits = msg["prefix"]
        if queries:
            self.metrics.prefix(queries, hits)
        for accepted in msg["drafts"]:
            self.metrics.draft(self.k, accepted)
            self.stats["drafts"] += 1
            self.stats["draft_tokens"] += self.k
            self.stats["accepted"] += accepted
            for pos in range(accepted):
                self.stats[f"pos{pos}"] += 1
        self.stats.update(
            prefix_queries=queries,
            prefix_hits=hits,
            prompt_tokens=msg["prompt_tokens"],
            generation_tokens=msg["generation_tokens"],
        )
        self.metrics.prompt_tokens.inc(msg["prompt_tokens"])
        self.metrics.generation_tokens.inc(msg["generation_tokens"])
        stamps = (int(t * 1e9), int(msg["sent"] * 1e9))
        for entry in msg["out"]:
            req = self.requests.get(entry[0])
            if req is not None and not req.done:
                self._output(req, t, stamps, *entry[1:])

    def _output(self, req, t, stamps, ids, finish, scheduled=None, num_cached=None):
        if req.first_token is None:
            req.scheduled, req.num_cached, req.first_token = scheduled, num_cached or 0, t
            self.metrics.ttft.observe(t - req.arrival)
        else:
            self.metrics.inter_token(t - req.last_token)
        req.last_token = t
        text, reasoning, count, stop_reason = "", "", 0, None
        for tid in ids:
            count += 1
            field, piece = req.detok.feed(tid)
            if field == "reasoning_content":
                reasoning += piece
                continue
            text += piece
            if req.num_output + count >= req.min_tokens:
                text, matched, stop_reason = self._check_stop(req, text)
                if matched:
                    finish = "stop"
                    break
        req.num_output += count
        req.text += text
        req.reasoning += reasoning
        req.queue.put_nowait(Delta(text, count, finish, stop_reason, stamps[0], reasoning, stamps[1]))
        if stop_reason is not None:  # the engine does not know about stop strings: it is told to drop the request
            self._send({"op": "abort", "rid": req.rid})
        if finish:
            self._finish(req, finish, t)

    @staticmethod
    def _check_stop(req, text):
        """Stop strings end the request; the string itself is not part of the output."""
        for s in req.stop:
            cut = (req.text + text).find(s, max(0, len(req.text) - len(s)))
            if cut >= 0:
                return (req.text + text)[len(req.text) : cut], True, s
        return text, False, None

    def _finish(self, req, reason, when):
        req.done = True
        req.finished_at = when
        self.requests.pop(req.rid, None)
        self.metrics.finished(req, reason)


async def log_stats(client):
    """`Engine 000: Avg prompt throughput…` (and `SpecDecoding metrics:`) every VLLM_LOG_STATS_INTERVAL seconds."""
    interval = float(os.environ.get("VLLM_LOG_STATS_INTERVAL", "10"))
    last, last_t, last_tput = collections.Counter(), time.perf_counter(), (0.0, 0.0)
    while True:
        await asyncio.sleep(interval)
        now, cur = time.perf_counter(), collections.Counter(client.stats)
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
            client.num_running,
            client.num_waiting,
            100.0 * client.kv_usage,
            hit_rate,
        )
        if delta["drafts"]:
            rates = ", ".join(f"{delta[f'pos{i}'] / delta['drafts']:.3f}" for i in range(client.k))
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
