"""EngineCore_0: a forked process that runs vLLM's engine start-up (memory check, weight loading,
torch.compile, KV cache, CUDA graphs) with the real log lines, then runs the engine loop (engine.py) for the
API server over a socket pair, holding the GPU allocation until the API server goes away. Durations follow the
simulated model; shard reading is real I/O.
"""

import asyncio
import ctypes
import hashlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from vllm_twin import VERSION, errors, logfmt
from vllm_twin.device import Allocation, GiB
from vllm_twin.engine import Engine, EngineRequest
from vllm_twin.errors import EngineCoreError
from vllm_twin.textgen import TextGen
from vllm_twin.timing import PHASE_SECONDS, TimingModel, env_float, simulate, sleep_until, time_scale

NON_TORCH_BYTES = int(0.25 * GiB)
GRAPH_BYTES = int(0.53 * GiB)


def load_checkpoint(checkpoint):
    """Read every shard (real I/O), paced to the simulated Thor read bandwidth; prints vLLM's tqdm lines."""
    bandwidth = env_float("VLLM_TWIN_LOAD_GBPS", 2.6) * 1e9
    total, start, nominal = len(checkpoint.files), time.perf_counter(), [0]
    sys.stderr.write(logfmt.tqdm_line(checkpoint.desc, 0, total, 0))

    def on_shard(i, nbytes):
        nominal[0] += nbytes
        sleep_until(start + nominal[0] / bandwidth * time_scale())
        sys.stderr.write(logfmt.tqdm_line(checkpoint.desc, i + 1, total, time.perf_counter() - start))

    checkpoint.load(on_shard)
    sys.stderr.write(logfmt.tqdm_line(checkpoint.desc, total, total, time.perf_counter() - start) + "\n")
    logfmt.info("default_loader.py:262", "Loading weights took %.2f seconds", time.perf_counter() - start)
    return nominal[0]


def compile_cache_dir(ctx, tag):
    root = Path(os.environ.get("VLLM_CACHE_ROOT") or Path.home() / ".cache" / "vllm")
    key = json.dumps({"model": ctx.args.model, "flags": ctx.compile_key, "image": VERSION}, sort_keys=True)
    return root / "torch_compile_cache" / hashlib.sha256(key.encode()).hexdigest()[:10] / "rank_0_0" / tag


def torch_compile(ctx, layers, tag):
    """Lines 17-20: warm when the cache directory for this model+flags+image exists, else compile and write it."""
    disabled = os.environ.get("VLLM_DISABLE_COMPILE_CACHE") == "1"
    path = compile_cache_dir(ctx, tag)
    if disabled:
        logfmt.info("backends.py:546", "vLLM's torch.compile cache is disabled.")
    else:
        logfmt.info("backends.py:548", "Using cache directory: %s for vLLM's torch.compile", path)
    dynamo = simulate(PHASE_SECONDS["dynamo_per_layer"] * layers)
    logfmt.info("backends.py:559", "Dynamo bytecode transform time: %.2f s", dynamo)
    if path.is_dir() and not disabled:
        graph = simulate(PHASE_SECONDS["warm_compile_per_layer"] * layers)
        logfmt.info("backends.py:161", "Directly load the compiled graph(s) for dynamic shape from the cache, took %.3f s", graph)
    else:
        logfmt.info("backends.py:194", "Cache the graph for dynamic shape for later use")
        graph = simulate(PHASE_SECONDS["cold_compile_per_layer"] * layers)
        logfmt.info("backends.py:215", "Compiling a graph for dynamic shape takes %.2f s", graph)
        if not disabled:
            write_compile_cache(path, ctx)
    logfmt.info("monitor.py:34", "torch.compile takes %.2f s in total", dynamo + graph)


def write_compile_cache(path, ctx):
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "vllm_compile_cache.py").write_text("# vLLM twin: simulated compile cache (no real kernels)\n")
    (tmp / "twin_simulated.json").write_text(
        json.dumps({"model": ctx.args.model, "flags": ctx.compile_key, "image": VERSION, "simulated": True}) + "\n"
    )
    try:
        tmp.rename(path)
    except OSError:  # another start wrote it first
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def capture_sizes(max_num_seqs):
    cap = min(2 * max_num_seqs, 512)
    return [s for s in (1, 2, 4) if s <= cap] + list(range(8, cap + 1, 8))


def kv_cache(ctx, requested, weights):
    spec = ctx.spec
    per_token = spec.kv_bytes_per_token + (ctx.draft_spec.kv_bytes_per_token if ctx.draft_spec else 0)
    available = requested - weights - spec.activation_peak_bytes - NON_TORCH_BYTES
    if available <= 0:
        raise EngineCoreError(
            "kv_cache",
            "ValueError: No available memory for the cache blocks. Try increasing "
            "`gpu_memory_utilization` when initializing the engine.",
        )
    logfmt.info("gpu_worker.py:276", "Available KV cache memory: %.2f GiB", available / GiB)
    tokens = int(available // (per_token * 16)) * 16
    needed = spec.max_model_len * per_token
    if needed > available:
        raise EngineCoreError(
            "kv_cache",
            f"ValueError: To serve at least one request with the models's max seq len "
            f"({spec.max_model_len}), ({needed / GiB:.2f} GiB KV cache is needed, which is larger "
            f"than the available KV cache memory ({available / GiB:.2f} GiB). Based on the available "
            f"memory, the estimated maximum model length is {tokens}. Try increasing "
            "`gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
        )
    logfmt.info("kv_cache_utils.py:849", "GPU KV cache size: %s tokens", f"{tokens:,}")
    logfmt.info(
        "kv_cache_utils.py:853",
        "Maximum concurrency for %s tokens per request: %.2fx",
        f"{spec.max_model_len:,}",
        tokens / spec.max_model_len,
    )
    return tokens


def run(ctx):
    """The engine start-up phases; returns what the front end needs. Raises EngineCoreError on failure."""
    args, spec, device = ctx.args, ctx.spec, ctx.device
    simulate(PHASE_SECONDS["engine_spawn"])
    logfmt.info("core.py:636", "Waiting for init message from front-end.")
    logfmt.info("core.py:74", "Initializing a V1 LLM engine (v%s) with config: %s", VERSION, ctx.config_str)
    free, total = device.free_bytes(), device.total_bytes
    requested = total * args.gpu_memory_utilization
    if free < requested:
        gib = lambda b: round(b / GiB, 2)  # noqa: E731 (vLLM's own formatting helper)
        raise EngineCoreError(
            "init_device",
            f"ValueError: Free memory on device ({gib(free)}/{gib(total)} GiB) on "
            f"startup is less than desired GPU memory utilization ({args.gpu_memory_utilization}, "
            f"{gib(requested)} GiB). Decrease GPU memory utilization or reduce GPU memory used by "
            "other processes.",
        )
    page_cache = ctx.checkpoint.nominal_bytes() + (ctx.draft_checkpoint.nominal_bytes() if ctx.draft_checkpoint else 0)
    ctx.allocation = Allocation(device, requested, page_cache, args.model)
    logfmt.info("parallel_state.py:1134", "rank 0 in world size 1 is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0")
    start = time.perf_counter()
    logfmt.info("gpu_model_runner.py:1953", "Starting to load model %s...", args.model)
    logfmt.info("gpu_model_runner.py:1985", "Loading model from scratch...")
    logfmt.info("cuda.py:328", "Using Flash Attention backend on V1 engine.")
    simulate(PHASE_SECONDS["model_init_per_layer"] * spec.layers)
    weights_format = "['*.safetensors', '*.bin', '*.pt']" if ctx.offline else "['*.safetensors']"
    if not ctx.local:
        logfmt.info("weight_utils.py:296", "Using model weights format %s", weights_format)
    load_checkpoint(ctx.checkpoint)
    weights = spec.weight_bytes
    if ctx.draft_spec:
        logfmt.info("gpu_model_runner.py:1995", "Loading drafter model...")
        logfmt.info("weight_utils.py:296", "Using model weights format %s", weights_format)
        load_checkpoint(ctx.draft_checkpoint)
        weights += ctx.draft_bytes  # the head's parameters (the file also holds what vLLM does not keep)
        logfmt.info("eagle.py:620", "Assuming the EAGLE head shares the same vocab embedding with the target model.")
    logfmt.info(
        "gpu_model_runner.py:2007", "Model loading took %.4f GiB and %.6f seconds", weights / GiB, time.perf_counter() - start
    )
    init_start = time.perf_counter()
    compiled = ctx.compile_level == 3 and not args.enforce_eager
    if compiled:
        torch_compile(ctx, spec.layers, "backbone")
        if ctx.draft_spec:
            torch_compile(ctx, ctx.draft_spec.layers, "eagle_head")
    simulate(PHASE_SECONDS["profile"])
    tokens = kv_cache(ctx, requested, weights)
    if compiled:
        sizes = capture_sizes(ctx.max_num_seqs)
        desc = "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE)"
        sys.stderr.write(logfmt.tqdm_line(desc, 0, len(sizes), 0, bar=True))
        took = simulate(len(sizes) * spec.layers * PHASE_SECONDS["graph_per_size_layer"])
        sys.stderr.write(logfmt.tqdm_line(desc, len(sizes), len(sizes), took, bar=True) + "\n")
        logfmt.info("gpu_model_runner.py:2708", "Graph capturing finished in %.0f secs, took %.2f GiB", took, GRAPH_BYTES / GiB)
    simulate(PHASE_SECONDS["warmup"])
    logfmt.info(
        "core.py:214", "init engine (profile, create kv cache, warmup model) took %.2f seconds", time.perf_counter() - init_start
    )
    return {"kv_tokens": tokens, "num_gpu_blocks": tokens // 16}


def _die_with_parent(parent):
    """PR_SET_PDEATHSIG: the kernel ends EngineCore_0 (and so releases its allocation) when the front end dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


async def serve(ctx, sock, kv_tokens):
    """The engine loop until the API server closes its end (or dies): the first message carries the generation
    vocabulary, then `add` and `abort` messages; one message goes back per step (engine.Engine)."""
    reader, writer = await asyncio.open_unix_connection(sock=sock)

    def emit(msg):
        msg["sent"] = time.perf_counter()
        writer.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    timing = TimingModel(ctx.spec, ctx.num_spec_tokens, ctx.draft_bytes)
    engine = Engine(timing, emit, ctx.max_num_seqs, ctx.max_batched, kv_tokens, prefix_caching=ctx.prefix_caching)
    gen = None
    engine.start()
    while line := await reader.readline():
        msg = json.loads(line)
        if msg["op"] == "init":
            gen = TextGen(msg["vocab"], ctx.spec)
        elif msg["op"] == "add":
            tokens = gen.tokens(msg["base"], msg["ignore_eos"])
            engine.add(EngineRequest(msg["rid"], msg["prompt"], tokens, msg["max_tokens"], msg["min_tokens"], msg["eos_id"]))
        elif msg["op"] == "abort":
            engine.abort(msg["rid"])


def start(ctx):
    """Fork EngineCore_0, wait for its handshake. Returns the ready info (ctx.engine_sock then talks to the engine
    loop); raises VllmFailure if it died."""
    parent = os.getpid()
    ready_r, ready_w = os.pipe()
    front, back = socket.socketpair()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        front.close()
        _die_with_parent(parent)
        logfmt.decorate("EngineCore_0")
        code = 1
        try:
            info = run(ctx)
            os.write(ready_w, json.dumps(info).encode() + b"\n")
            os.close(ready_w)
            asyncio.run(serve(ctx, back, info["kv_tokens"]))
            code = 0
        except EngineCoreError as exc:
            logfmt.log("ERROR", "core.py:700", "EngineCore failed to start.\n%s", exc.traceback())
            sys.stderr.write("Process EngineCore_0:\n" + exc.process_traceback() + "\n")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(ready_w)
    back.close()
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(ready_r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(ready_r)
    if not data.endswith(b"\n"):
        _, status = os.waitpid(pid, 0)
        raise errors.engine_start_failed(os.waitstatus_to_exitcode(status))
    ctx.engine_pid, ctx.engine_sock = pid, front
    return json.loads(data)
