# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: the serving stages (docs/serving.md).
# Standard library only: the log parsing runs on the units (module vllm_ready), the rest on the controller (filters).
#
# - the stage catalog: the built-in stages of playbooks/vars/stages.yml plus the organizers' workshop_stages_extra,
#   each entry checked and completed (served_name, args, extra_models, env, requires);
# - the `vllm serve` arguments of a stage: its own args, then the common serve options, the same for the pre-warm
#   (which builds the compile cache) and the serving role (which must hit it);
# - vLLM's start-up log: the phases (weights, torch.compile, CUDA graphs, total) and whether the compile was skipped;
# - the hint for a failure (NVML/runtime, memory, encodings, missing model, port, image, timeout).

from __future__ import annotations

import datetime
import json
import re

# --- the catalog --------------------------------------------------------------------------------------------------

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# The tiktoken encodings openai_harmony loads for gpt-oss (platform-facts.md 2.6).
GPT_OSS_ENCODINGS = ["o200k_base.tiktoken", "cl100k_base.tiktoken"]
STAGE_KEYS = (
    "name",
    "model",
    "served_name",
    "args",
    "extra_models",
    "env",
    "memory_gib",
    "disk_gib",
    "requires",
    "description",
)


class CatalogError(ValueError):
    """A bad stage or catalog: the message names the stage, the problem and the fix."""


def _needs_encodings(model):
    return model.split("/")[-1].startswith("gpt-oss")


def normalize_stage(stage, source="workshop_stages"):
    """One checked, complete catalog entry (a new dict): name and model are required, the rest has defaults."""
    if not isinstance(stage, dict):
        raise CatalogError(f"{source}: every stage must be a mapping with at least name and model, got {stage!r}.")
    name = stage.get("name")
    where = f"{source}: stage {name!r}"
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CatalogError(
            f"{source}: a stage needs a name of letters, digits, '.', '_' or '-' (got {name!r}); "
            f"the stage is {json.dumps(stage, sort_keys=True, default=str)}."
        )
    unknown = sorted(set(stage) - set(STAGE_KEYS))
    if unknown:
        raise CatalogError(f"{where} has unknown keys {', '.join(unknown)}; a stage may have {', '.join(STAGE_KEYS)}.")
    model = stage.get("model")
    if not isinstance(model, str) or not REPO_RE.match(model):
        raise CatalogError(f"{where}: model must be a Hugging Face repo id <org>/<name>, got {model!r}.")
    args = stage.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in args):
        raise CatalogError(f"{where}: args must be a list of `vllm serve` words (strings), got {args!r}.")
    args = [str(a) for a in args]
    extra = stage.get("extra_models", [])
    if not isinstance(extra, list) or not all(isinstance(m, str) and REPO_RE.match(m) for m in extra):
        raise CatalogError(f"{where}: extra_models must be a list of repo ids <org>/<name>, got {extra!r}.")
    env = stage.get("env", {})
    if not isinstance(env, dict):
        raise CatalogError(f"{where}: env must be a mapping of container environment variables, got {env!r}.")
    served = stage.get("served_name") or model
    if not isinstance(served, str):
        raise CatalogError(f"{where}: served_name must be a string (the id /v1/models lists), got {served!r}.")
    out = {
        "name": name,
        "model": model,
        "served_name": served,
        "args": args,
        "extra_models": list(extra),
        "env": {str(k): str(v) for k, v in env.items()},
    }
    for key in ("memory_gib", "disk_gib"):
        value = stage.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise CatalogError(f"{where}: {key} must be a number of GiB (0 or more), got {value!r}.")
        out[key] = value
    requires = stage.get("requires") or {}
    if not isinstance(requires, dict) or set(requires) - {"models", "encodings"}:
        raise CatalogError(f"{where}: requires may only hold models and encodings (lists), got {requires!r}.")
    models = requires.get("models") or [model, *extra]
    encodings = requires.get("encodings")
    if encodings is None:
        encodings = list(GPT_OSS_ENCODINGS) if _needs_encodings(model) else []
    if not isinstance(models, list) or not all(isinstance(m, str) and REPO_RE.match(m) for m in models):
        raise CatalogError(f"{where}: requires.models must be a list of repo ids, got {models!r}.")
    missing = [m for m in [model, *extra] if m not in models]
    if missing:
        raise CatalogError(
            f"{where}: requires.models must include the model and every extra model (missing {', '.join(missing)})."
        )
    if not isinstance(encodings, list) or not all(isinstance(e, str) and "/" not in e for e in encodings):
        raise CatalogError(f"{where}: requires.encodings must be a list of file names under encodings/, got {encodings!r}.")
    if encodings and "TIKTOKEN_ENCODINGS_BASE" not in out["env"]:
        raise CatalogError(
            f"{where} requires tiktoken encodings but its env has no TIKTOKEN_ENCODINGS_BASE (the container path of "
            "the encodings mount, /etc/encodings): add it, or vLLM would try to download them."
        )
    out["requires"] = {"models": list(models), "encodings": list(encodings)}
    if stage.get("description") is not None:
        out["description"] = str(stage["description"])
    return out


def catalog(builtin, extra=None):
    """The built-in stages followed by the organizers' extra ones, each normalized; names must be unique."""
    if not isinstance(builtin, list):
        raise CatalogError(f"workshop_stages_builtin must be a list of stages, got {type(builtin).__name__}.")
    if extra is None:
        extra = []
    if not isinstance(extra, list):
        raise CatalogError(
            f"workshop_stages_extra must be a list of stages (each a mapping with name, model, ...), got {extra!r}."
        )
    out, seen = [], {}
    for source, stages in (("playbooks/vars/stages.yml", builtin), ("workshop_stages_extra", extra)):
        for stage in stages:
            entry = normalize_stage(stage, source)
            if entry["name"] in seen:
                raise CatalogError(
                    f"{source}: stage name {entry['name']!r} is already in the catalog (from {seen[entry['name']]}); "
                    f"every stage needs its own name: rename the stage in {source}."
                )
            seen[entry["name"]] = source
            out.append(entry)
    return out


# --- the serve command ---------------------------------------------------------------------------------------------

# The common serve options, in the order their flags follow the stage's own args.
FAST_STARTUP_ARGS = ["--compilation-config", '{"level": 0}']
OPTION_FLAGS = (
    ("gpu_memory_utilization", "--gpu-memory-utilization"),
    ("max_model_len", "--max-model-len"),
    ("max_num_seqs", "--max-num-seqs"),
)
OPTION_KEYS = ("fast_startup", *(key for key, _flag in OPTION_FLAGS))
DEFAULT_UTILIZATION = 0.9  # vLLM 0.10.1's --gpu-memory-utilization default


def _has_flag(args, flag):
    alt = flag.replace("-", "_")
    for arg in args:
        for f in (flag, "--" + alt[2:]):
            if arg == f or arg.startswith(f + "="):
                return True
    return False


def _number(value):
    """2 -> '2', 0.7 -> '0.7', '0.70' -> '0.7'."""
    number = float(value)
    return str(int(number)) if number == int(number) else repr(number)


def serve_args(stage, options=None):
    """The `vllm serve <model>` arguments after the model: the stage's args, --served-model-name when the stage
    serves another id than its model, then the common options (falsy ones give no flag; a flag the stage sets itself
    wins). The pre-warm and the serving role both build the command with this, so the compile-cache key matches."""
    options = options or {}
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise CatalogError(f"unknown serve options {', '.join(unknown)}; known: {', '.join(OPTION_KEYS)}.")
    args = [str(a) for a in stage.get("args", [])]
    served = stage.get("served_name")
    if served and served != stage["model"] and not _has_flag(args, "--served-model-name"):
        args += ["--served-model-name", served]
    fast = options.get("fast_startup")
    if isinstance(fast, str):
        fast = fast.strip().lower() in ("1", "true", "yes", "on")
    if fast and not _has_flag(args, "--compilation-config") and not any(a.startswith("-O") for a in args):
        args += FAST_STARTUP_ARGS
    for key, flag in OPTION_FLAGS:
        value = options.get(key)
        if value in (None, "", 0, "0", 0.0) or _has_flag(args, flag):
            continue
        try:
            text = _number(value)
        except (TypeError, ValueError):
            raise CatalogError(f"serve option {key} must be a number, got {value!r}.") from None
        args += [flag, text]
    return args


def utilization(args):
    """The --gpu-memory-utilization vLLM will use with these arguments (its default when none is given)."""
    for i, arg in enumerate(args):
        for flag in ("--gpu-memory-utilization", "--gpu_memory_utilization"):
            if arg == flag and i + 1 < len(args):
                return float(args[i + 1])
            if arg.startswith(flag + "="):
                return float(arg.split("=", 1)[1])
    return DEFAULT_UTILIZATION


# --- the start-up log ---------------------------------------------------------------------------------------------

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?\s?(.*)$")
STARTUP_COMPLETE = "Application startup complete."

_PHASES = {
    "load": re.compile(r"Model loading took [\d.]+ GiB and ([\d.]+) seconds"),
    "weights": re.compile(r"Loading weights took ([\d.]+) seconds"),
    "compile": re.compile(r"torch\.compile takes ([\d.]+) s in total"),
    "graphs": re.compile(r"Graph capturing finished in ([\d.]+) secs"),
    "engine_init": re.compile(r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) seconds"),
}
_COMPILED = "Compiling a graph for dynamic shape"
_FROM_CACHE = "Directly load the compiled graph(s)"


def parse_time(text):
    """Docker's RFC 3339 time (nanoseconds, Z or an offset) -> POSIX seconds (float), or None."""
    if not text:
        return None
    match = TS_RE.match(text.strip())
    if not match:
        return None
    base, frac, zone, _rest = match.groups()
    when = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    offset = datetime.timedelta(0)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    when = when.replace(tzinfo=datetime.timezone.utc) - offset  # noqa: UP017 -- units may run Python < 3.11
    return when.timestamp() + (float("0." + frac) if frac else 0.0)


def clean(line):
    return ANSI_RE.sub("", line).replace("\r", "").rstrip()


def merge_logs(stdout, stderr):
    """`docker logs --timestamps` stdout and stderr -> [(seconds or None, text)] in time order, ANSI codes and CRs
    removed (vLLM writes its logger to stdout, tracebacks, tqdm and uvicorn to stderr)."""
    entries = []
    for order, text in enumerate((stdout or "", stderr or "")):
        # Not splitlines(): a tqdm line holds bare \r between its updates.
        for index, raw in enumerate(text.rstrip("\n").split("\n") if text else []):
            match = TS_RE.match(raw)
            if match and match.group(3):
                when = parse_time(raw.split(" ", 1)[0])
                body = match.group(4)
            else:
                when, body = None, raw
            # A tqdm line holds several \r-separated updates: keep the last.
            body = clean(body.split("\r")[-1] if "\r" in body.strip("\r") else body)
            entries.append((when if when is not None else float("inf"), order, index, when, body))
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    return [(when, body) for _key, _order, _index, when, body in entries]


def phases(lines, started_at=None):
    """Start-up phases from the merged log lines: seconds of loading (weights and model), torch.compile, CUDA graph
    capture, engine init, and in total (container start to `Application startup complete`, when both are known);
    compile: compiled | from_cache | off; compile_skipped: True when no graph was compiled (cache or level 0)."""
    texts = [text for _when, text in lines]
    out = {"load_s": None, "compile_s": None, "graphs_s": None, "engine_init_s": None, "total_s": None}
    loads = [float(m.group(1)) for t in texts for m in [_PHASES["load"].search(t)] if m]
    weights = [float(m.group(1)) for t in texts for m in [_PHASES["weights"].search(t)] if m]
    if loads:
        out["load_s"] = round(loads[-1], 2)
    elif weights:
        out["load_s"] = round(sum(weights), 2)
    compiles = [float(m.group(1)) for t in texts for m in [_PHASES["compile"].search(t)] if m]
    if compiles:
        out["compile_s"] = round(sum(compiles), 2)
    graphs = [float(m.group(1)) for t in texts for m in [_PHASES["graphs"].search(t)] if m]
    if graphs:
        out["graphs_s"] = round(sum(graphs), 2)
    inits = [float(m.group(1)) for t in texts for m in [_PHASES["engine_init"].search(t)] if m]
    if inits:
        out["engine_init_s"] = round(inits[-1], 2)
    complete = [when for when, text in lines if STARTUP_COMPLETE in text and when is not None]
    if complete and started_at is not None:
        out["total_s"] = round(max(0.0, complete[-1] - started_at), 2)
    compiled = any(_COMPILED in t for t in texts)
    cached = any(_FROM_CACHE in t for t in texts)
    if compiled:
        out["compile"] = "compiled"
    elif cached:
        out["compile"] = "from_cache"
    elif compiles:
        out["compile"] = "compiled"
    else:
        out["compile"] = "off"
    out["compile_skipped"] = out["compile"] != "compiled"
    out["startup_complete"] = any(STARTUP_COMPLETE in t for t in texts)
    return out


def describe_phases(p):
    """'load 24.7 s, compile 5.1 s (from cache), graphs 21 s, total 62.3 s': one line for reports."""
    if not p:
        return None
    parts = []
    if p.get("load_s") is not None:
        parts.append(f"load {p['load_s']:g} s")
    compile_word = {"compiled": "compiled", "from_cache": "from cache", "off": "off"}.get(p.get("compile"), "?")
    if p.get("compile_s") is not None:
        parts.append(f"compile {p['compile_s']:g} s ({compile_word})")
    elif p.get("compile"):
        parts.append(f"compile {compile_word}")
    if p.get("graphs_s") is not None:
        parts.append(f"graphs {p['graphs_s']:g} s")
    if p.get("total_s") is not None:
        parts.append(f"total {p['total_s']:g} s")
    return ", ".join(parts) or None


# --- failures and their hints ------------------------------------------------------------------------------------

HINTS = {
    "runtime": (
        "the container cannot use the GPU (no or broken NVIDIA runtime, NVML): run playbooks/runtime.yml (role "
        "docker_runtime: daemon.json with the nvidia runtime and default-runtime nvidia, Docker restarted, checked with "
        "a CUDA container); if NVML still fails, reboot the unit"
    ),
    "memory": (
        "not enough free unified memory for vLLM: run the memory hygiene (playbooks/runtime.yml, role gpu_memory: "
        "drop caches, stop containers, restart Docker, reboot with gpu_memory_allow_reboot=true), or lower "
        "vllm_stage_gpu_memory_utilization, vllm_stage_max_model_len or vllm_stage_max_num_seqs"
    ),
    "encodings": (
        "the tiktoken encodings gpt-oss needs are missing or wrong: <workshop_data_root>/encodings must hold "
        "o200k_base.tiktoken and cl100k_base.tiktoken with their published sha256 (mounted at TIKTOKEN_ENCODINGS_BASE); "
        "distribute the content (playbooks/content.yml) from a pre-warm that includes a gpt-oss stage"
    ),
    "model": (
        "a model of the stage is not in the unit's Hugging Face cache: distribute the content (playbooks/content.yml); "
        "pre-warm the stage first (playbooks/prewarm.yml) if the organizer does not have it"
    ),
    "port": (
        "another server already listens on the vLLM port: find it with docker ps (a leftover vllm, pre-warm or "
        "serve-check container) and stop it, then re-run"
    ),
    "image": (
        "the vLLM image is not on the unit: distribute the content (playbooks/content.yml loads the images) or "
        "docker pull workshop_vllm_image"
    ),
    "timeout": (
        "vLLM did not become ready in time: raise vllm_stage_ready_timeout (gpt-oss-120b needs about 150 s with a "
        "cold compile cache), or read the log lines for a stall"
    ),
    "exited": "vLLM exited during start-up: read the log lines for the cause",
    "missing": "the vLLM container is not there (removed by hand?): run the serving role again",
}

# (kind, pattern) in order: the first that matches names the failure (a missing model before missing encodings: the
# content is missing, and distributing it brings both).
FAILURE_PATTERNS = (
    (
        "runtime",
        re.compile(
            r"Can't initialize NVML|NVMLError|failed to be inspected|Failed to infer device type|libcuda\.so\.1"
            r"|No platform detected|[Uu]nknown runtime specified|unknown or invalid runtime name"
            r"|could not select device driver",
        ),
    ),
    (
        "memory",
        re.compile(
            r"Free memory on device .*is less than desired GPU memory utilization|No available memory for the cache blocks"
            r"|To serve at least one request with the models's max seq len|CUDA out of memory|OutOfMemoryError"
            r"|not enough free GPU memory",
        ),
    ),
    (
        "model",
        re.compile(
            r"LocalEntryNotFoundError|couldn't connect to 'https://huggingface\.co'|Invalid repository ID or local directory"
            r"|Can't load the configuration of|is not in the cache|Hugging Face cache \(.*\) lacks",
        ),
    ),
    ("encodings", re.compile(r"HarmonyError|error downloading or loading vocab file|tiktoken encodings")),
    ("port", re.compile(r"Address already in use")),
    ("image", re.compile(r"No such image|Cannot find image|pull access denied|manifest unknown|image .* not found")),
)


def classify(text):
    """(kind, the line that shows it) for a failure's log or message, or (None, None). Kinds are tried in order; within
    a kind the last matching line is taken (the exception a traceback ends with)."""
    lines = text if isinstance(text, list) else str(text or "").splitlines()
    for kind, pattern in FAILURE_PATTERNS:
        for line in reversed(lines):
            if pattern.search(line):
                return kind, line.strip()
    return None, None


def hint(kind):
    return HINTS.get(kind)


def error_lines(lines, limit=4):
    """The exception lines of a log (`SomethingError: ...`), the last `limit` of them, prefixes removed."""
    found = []
    for line in lines:
        text = re.sub(r"^\(\w+ pid=\d+\)\s*", "", line)
        text = re.sub(r"^(INFO|WARNING|ERROR|DEBUG) \d\d-\d\d \d\d:\d\d:\d\d \[[^\]]+\] ", "", text)
        if re.match(r"^[\w.]*(Error|Exception)\b.*: ", text) or text.startswith("Value error, "):
            found.append(text.strip())
    return found[-limit:]
