#!/usr/bin/env python3
"""How faithfully the vLLM twin keeps its own timing model, seen by an independent client, and what it costs.

Starts the twin (API server and EngineCore_0 are two processes, as in vLLM V1) on a tiny generated HF cache
and drives it with streaming chat requests from a plain aiohttp client in this process, which timestamps every
SSE event as it arrives. Per chunk it then compares three clocks (all CLOCK_MONOTONIC on this host):
  model  - when the twin's timing model says the engine step ended (`model_ns` in GET /twin/requests),
  write  - when the API server's write() of that chunk returned (`write_ns`),
  client - when this client read the chunk's event.

  1. client vs write vs model at concurrency 1, 16 and 64 on an idle machine: time to first token and
     inter-token time as each clock gives them; the goal is client TTFT within 2 ms + 2 % of the write-based
     TTFT for every request;
  2. the same at 16 and 64 with two CPU burners (a loaded machine): how far the writes lag the model;
  3. how many concurrent streams the twin sustains with a flat batch cost (VLLM_TWIN_BATCH_SLOWDOWN=0, so every
     step lasts the batch-1 52 ms), stopping when the actual mean inter-chunk gap exceeds the model's by > 10 %;
  and CPU milliseconds per generated token of the twin's two processes (utime + stime from /proc).

    .venv/bin/python bench/vllm_twin_timing.py [--json out.json] [--skip-ladder]

Every time here is simulated Thor time, reproduced by the twin on this machine; nothing is a Thor measurement.
"""

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "twin" / "content"))
import make_hf_cache  # the twin's HF cache generator, from the checkout

MODEL = "nvidia/Llama-3.1-8B-Instruct-FP4"
TICKS = os.sysconf("SC_CLK_TCK")
MAX_TOKENS = 64


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]


class Twin:
    def __init__(self, work, max_num_seqs, **knobs):
        dev = work / f"gpu-{max_num_seqs}-{len(knobs)}"
        dev.mkdir()
        (dev / "device.json").write_text(
            json.dumps({"name": "NVIDIA Thor", "total_bytes": 131881500672, "nvml_ok": True, "simulated": True})
        )
        (dev / "meminfo").write_text("MemTotal: 128790528 kB\nMemFree: 125000000 kB\n")
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT / "twin" / "vllm"),
            HF_HUB_CACHE=str(work / "hub"),
            HF_HUB_OFFLINE="1",
            VLLM_TWIN_DEVICE_DIR=str(dev),
            VLLM_TWIN_LOAD_GBPS="1000",
            VLLM_TWIN_TIME_SCALE="1",
            VLLM_CACHE_ROOT=str(work / "cache"),
            VLLM_LOG_STATS_INTERVAL="1000",
            **knobs,
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "vllm_twin", "serve", MODEL, "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--enforce-eager", "--max-num-seqs", str(max_num_seqs), "--disable-uvicorn-access-log"]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def pids(self):
        """The API server and its EngineCore_0 child."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [self.proc.pid, *map(int, children)]

    async def ready(self, session):
        for _ in range(600):
            try:
                async with session.get(self.url + "/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("twin did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def stream_one(session, url, rid, max_tokens):
    """One streaming chat request; returns the send time and the arrival time of each content event."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"bench {rid}"}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
    }
    arrivals = []
    sent = time.perf_counter_ns()
    async with session.post(url + "/v1/chat/completions", json=body, headers={"X-Request-Id": rid}) as resp:
        async for line in resp.content:
            if line.startswith(b"data: {"):  # not parsed: the client must not be the bottleneck at 2048 streams
                arrivals.append(time.perf_counter_ns())
    return sent, arrivals[1:]  # the first event is the role delta, written together with the first token


def burn(stop_at):
    while time.monotonic() < stop_at:
        pass


async def level(twin, session, concurrency, rounds, max_tokens, tag):
    """concurrency workers, each sending `rounds` requests one after another; per-request clocks compared."""
    await session.delete(twin.url + "/twin/requests")
    pids = twin.pids
    cpu0 = cpu_seconds(pids)

    async def worker(w):
        return [await stream_one(session, twin.url, f"{tag}-{w}-{i}", max_tokens) for i in range(rounds)]

    results = dict(
        zip(
            (f"{tag}-{w}-{i}" for w in range(concurrency) for i in range(rounds)),
            itertools.chain.from_iterable(await asyncio.gather(*(worker(w) for w in range(concurrency)))),
            strict=True,
        )
    )
    cpu = cpu_seconds(pids) - cpu0
    async with session.get(twin.url + "/twin/requests") as r:
        trace = await r.json()
    assert trace["simulated"] and trace["time_scale"] == 1.0, trace
    row = {"concurrency": concurrency, "requests": 0, "tokens": 0, "mismatched": 0}
    ttft = {"client": [], "write": [], "model": []}
    ttft_gap, ttft_ok, itl_gap = [], 0, []
    itl = {"client": [], "write": [], "model": []}
    lag_write, lag_engine = [], []
    for rec in trace["requests"]:
        sent, arrivals = results[rec["id"].removeprefix("chatcmpl-")]
        chunks = rec["chunks"]
        if len(arrivals) != len(chunks):
            row["mismatched"] += 1  # the client saw a different number of events than the twin wrote
            continue
        row["requests"] += 1
        row["tokens"] += rec["completion_tokens"]
        clocks = {"client": arrivals, "write": [c["write_ns"] for c in chunks], "model": [c["model_ns"] for c in chunks]}
        for name, times in clocks.items():
            ttft[name].append((times[0] - sent) / 1e6)
            itl[name] += [(b - a) / 1e6 for a, b in itertools.pairwise(times)]
        gap = ttft["client"][-1] - ttft["write"][-1]
        ttft_gap.append(gap)
        ttft_ok += abs(gap) <= 2.0 + 0.02 * ttft["write"][-1]
        n = len(chunks) - 1
        itl_gap += [abs(a - b) for a, b in zip(itl["client"][-n:] if n else [], itl["write"][-n:] if n else [], strict=True)]
        lag_write += [(c["write_ns"] - c["model_ns"]) / 1e6 for c in chunks]
        lag_engine += [(c["engine_ns"] - c["model_ns"]) / 1e6 for c in chunks]
    row.update(
        ttft_ms={k: statistics.median(v) for k, v in ttft.items()},
        ttft_client_minus_write_ms={"median": statistics.median(ttft_gap), "max": max(ttft_gap, key=abs)},
        ttft_within_bound=f"{ttft_ok}/{row['requests']}",
        itl_ms={k: statistics.mean(v) for k, v in itl.items()},
        itl_client_vs_write_ms={"median": statistics.median(itl_gap), "p99": pct(itl_gap, 0.99)},
        write_lag_ms={"median": statistics.median(lag_write), "p99": pct(lag_write, 0.99), "max": max(lag_write)},
        engine_lag_ms={"median": statistics.median(lag_engine), "p99": pct(lag_engine, 0.99), "max": max(lag_engine)},
        cpu_ms_per_token=1000 * cpu / max(row["tokens"], 1),
        loadavg=os.getloadavg()[0],
    )
    return row


def ladder_row(row):
    return row["itl_ms"]["write"] <= 1.10 * row["itl_ms"]["model"]


async def main(args):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_hf_cache.main(["--hub-dir", str(work / "hub"), "--models", "llama-fp4"])
        results = {"idle": [], "loaded": [], "ladder": []}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=900)) as session:
            twin = Twin(work, 256)
            try:
                await twin.ready(session)
                await level(twin, session, 4, 1, 8, "warm")
                for concurrency, rounds in ((1, 12), (16, 3), (64, 2)):
                    results["idle"].append(await level(twin, session, concurrency, rounds, MAX_TOKENS, f"idle{concurrency}"))
                burners = [multiprocessing.Process(target=burn, args=(time.monotonic() + 600,)) for _ in range(2)]
                for b in burners:
                    b.start()
                try:
                    for concurrency, rounds in ((16, 3), (64, 2)):
                        results["loaded"].append(
                            await level(twin, session, concurrency, rounds, MAX_TOKENS, f"load{concurrency}")
                        )
                finally:
                    for b in burners:
                        b.terminate()
            finally:
                twin.stop()
            if args.skip_ladder:
                return results
            twin = Twin(work, 8192, VLLM_TWIN_BATCH_SLOWDOWN="0")
            try:
                await twin.ready(session)
                for concurrency in (64, 256, 512, 1024, 2048):
                    row = await level(twin, session, concurrency, 1, 48, f"ladder{concurrency}")
                    results["ladder"].append(row)
                    if not ladder_row(row):
                        break
            finally:
                twin.stop()
    return results


def table(rows):
    print(
        f"{'conc':>4} {'reqs':>4} | {'TTFT ms: client':>15} {'write':>7} {'model':>7} | {'client-write med':>16} "
        f"{'worst':>7} {'in bound':>8} | {'ITL ms: client':>14} {'write':>6} {'model':>6} {'|c-w| p99':>9} | "
        f"{'write-model lag ms: med':>23} {'p99':>6} {'max':>6} | {'engine lag p99':>14} | {'CPU ms/tok':>10} {'load':>5}"
    )
    for r in rows:
        t, i, w = r["ttft_ms"], r["itl_ms"], r["write_lag_ms"]
        print(
            f"{r['concurrency']:>4} {r['requests']:>4} | {t['client']:>15.2f} {t['write']:>7.2f} {t['model']:>7.2f} | "
            f"{r['ttft_client_minus_write_ms']['median']:>16.3f} {r['ttft_client_minus_write_ms']['max']:>7.3f} "
            f"{r['ttft_within_bound']:>8} | {i['client']:>14.2f} {i['write']:>6.2f} {i['model']:>6.2f} "
            f"{r['itl_client_vs_write_ms']['p99']:>9.3f} | {w['median']:>23.2f} {w['p99']:>6.2f} {w['max']:>6.2f} | "
            f"{r['engine_lag_ms']['p99']:>14.2f} | {r['cpu_ms_per_token']:>10.3f} {r['loadavg']:>5.1f}"
        )
        if r["mismatched"]:
            print(f"     {r['mismatched']} requests: the client saw a different number of chunks than the twin wrote")


def report(results):
    print("Simulated FP4 Llama-3.1-8B timing model (not a Thor measurement); 64-token streaming chat answers.")
    print("TTFT/ITL per clock: client = event read by this client, write = twin's write() returned, model = the")
    print("timing model's step end. 'in bound': requests whose client TTFT is within 2 ms + 2 % of the write TTFT.\n")
    print("1. Idle machine")
    table(results["idle"])
    print("\n2. Loaded machine (two CPU burners, one per core)")
    table(results["loaded"])
    if results["ladder"]:
        print("\n3. Streams the twin sustains with a flat 52 ms step (VLLM_TWIN_BATCH_SLOWDOWN=0)")
        table(results["ladder"])
        ok = [r["concurrency"] for r in results["ladder"] if ladder_row(r)]
        print(f"\nsustained within 10 % of the model's inter-token time: {max(ok) if ok else 0} concurrent streams")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument("--skip-ladder", action="store_true", help="only parts 1 and 2")
    opts = parser.parse_args()
    out = asyncio.run(main(opts))
    report(out)
    if opts.json:
        Path(opts.json).write_text(json.dumps(out, indent=2) + "\n")
