#!/usr/bin/env python3
"""How faithfully the vLLM twin keeps its own timing model, and what it costs in CPU.

Starts the twin (pinned to CPU 0 with taskset) on a tiny generated HF cache, drives it with streaming chat
requests from this process (pinned to CPU 1), and compares, per chunk, the time the twin actually finished
writing it (`write_ns`, from GET /twin/requests) with the time its timing model intended (`model_ns`):

  1. accuracy at concurrency 1 and 64 (the Thor timing model, unscaled): median and p99 of
     write_ns - model_ns;
  2. how many concurrent streams one core sustains: a concurrency ladder with a flat batch cost
     (VLLM_TWIN_BATCH_SLOWDOWN=0, so every step lasts the batch-1 52 ms whatever the batch; with the default
     slope the model's steps grow faster than the twin's CPU cost), stopping when the actual mean inter-chunk
     gap exceeds the model's by > 10 %;
  3. CPU seconds per generated token of the server process (utime + stime from /proc/<pid>/stat).

    .venv/bin/python bench/vllm_twin_timing.py [--json out.json]
"""

import argparse
import asyncio
import json
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
import itertools

import make_hf_cache

MODEL = "nvidia/Llama-3.1-8B-Instruct-FP4"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Twin:
    def __init__(self, work, max_num_seqs, **knobs):
        dev = work / f"gpu-{max_num_seqs}"
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
            VLLM_CACHE_ROOT=str(work / "cache"),
            VLLM_LOG_STATS_INTERVAL="1000",
            **knobs,
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                "taskset",
                "-c",
                "0",
                sys.executable,
                "-m",
                "vllm_twin",
                "serve",
                MODEL,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--enforce-eager",
                "--max-num-seqs",
                str(max_num_seqs),
                "--disable-uvicorn-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

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


async def stream_one(session, url, max_tokens):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"bench {time.time_ns()}"}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
    }
    async with session.post(url + "/v1/chat/completions", json=body) as resp:
        async for _ in resp.content:
            pass


async def level(twin, session, concurrency, per_worker, max_tokens):
    await session.delete(twin.url + "/twin/requests")
    cpu0 = cpu_seconds(twin.proc.pid)

    async def worker():
        for _ in range(per_worker):
            await stream_one(session, twin.url, max_tokens)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = cpu_seconds(twin.proc.pid) - cpu0
    async with session.get(twin.url + "/twin/requests") as r:
        records = (await r.json())["requests"]
    errors, actual_gaps, model_gaps, tokens, model_itl = [], 0, 0, 0, []
    for rec in records:
        chunks = rec["chunks"]
        tokens += rec["completion_tokens"]
        errors += [(c["write_ns"] - c["model_ns"]) / 1e6 for c in chunks]
        actual_gaps += chunks[-1]["write_ns"] - chunks[0]["write_ns"]
        model_gaps += chunks[-1]["model_ns"] - chunks[0]["model_ns"]
        model_itl += [(b["model_ns"] - a["model_ns"]) / 1e6 for a, b in itertools.pairwise(chunks)]
    errors.sort()
    return {
        "concurrency": concurrency,
        "requests": len(records),
        "tokens": tokens,
        "error_ms_median": statistics.median(errors),
        "error_ms_p99": errors[int(0.99 * (len(errors) - 1))],
        "itl_excess_pct": 100.0 * (actual_gaps / model_gaps - 1),
        "model_itl_ms": statistics.median(model_itl),
        "cpu_s_per_token": cpu / tokens,
        "loadavg": os.getloadavg()[0],
    }


def sustained(row):
    return row["itl_excess_pct"] <= 10


async def main(args):
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_hf_cache.main(["--hub-dir", str(work / "hub"), "--models", "llama-fp4"])
        results = {"accuracy": [], "ladder": []}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
            twin = Twin(work, 256)
            try:
                await twin.ready(session)
                await level(twin, session, 4, 1, 8)  # warm-up
                for concurrency, per_worker in ((1, 8), (64, 1)):
                    results["accuracy"].append(await level(twin, session, concurrency, per_worker, 48))
            finally:
                twin.stop()
            twin = Twin(work, 8192, VLLM_TWIN_BATCH_SLOWDOWN="0")
            try:
                await twin.ready(session)
                for concurrency in (64, 256, 512, 1024, 2048, 4096):
                    row = await level(twin, session, concurrency, 1, 48)
                    results["ladder"].append(row)
                    if not sustained(row):
                        break
            finally:
                twin.stop()
    return results


def report(results):
    print("Timing-model accuracy (FP4 Llama-3.1-8B timing model, server pinned to CPU 0, client on CPU 1)")
    print(
        f"{'conc':>5} {'reqs':>5} {'tokens':>7} {'model ITL ms':>13} {'err median ms':>14} {'err p99 ms':>11} "
        f"{'ITL excess %':>13} {'CPU ms/token':>13} {'load':>5}"
    )
    for r in results["accuracy"]:
        print(
            f"{r['concurrency']:>5} {r['requests']:>5} {r['tokens']:>7} {r['model_itl_ms']:>13.2f} "
            f"{r['error_ms_median']:>14.3f} {r['error_ms_p99']:>11.3f} {r['itl_excess_pct']:>13.2f} "
            f"{1000 * r['cpu_s_per_token']:>13.3f} {r['loadavg']:>5.1f}"
        )
    print("\nStreams one core sustains (flat 52 ms steps: VLLM_TWIN_BATCH_SLOWDOWN=0)")
    print(
        f"{'conc':>5} {'tokens':>7} {'model ITL ms':>13} {'err median ms':>14} {'err p99 ms':>11} {'ITL excess %':>13} "
        f"{'CPU ms/token':>13} {'load':>5}"
    )
    for r in results["ladder"]:
        print(
            f"{r['concurrency']:>5} {r['tokens']:>7} {r['model_itl_ms']:>13.2f} {r['error_ms_median']:>14.3f} "
            f"{r['error_ms_p99']:>11.3f} {r['itl_excess_pct']:>13.2f} {1000 * r['cpu_s_per_token']:>13.3f} "
            f"{r['loadavg']:>5.1f}"
        )
    ok = [r["concurrency"] for r in results["ladder"] if sustained(r)]
    print(f"\nsustained within 10 % of the model: {max(ok) if ok else 0} concurrent streams at 52 ms per step")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results as JSON to this file")
    opts = parser.parse_args()
    out = asyncio.run(main(opts))
    report(out)
    if opts.json:
        Path(opts.json).write_text(json.dumps(out, indent=2) + "\n")
