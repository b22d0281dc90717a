"""The OpenAI-compatible HTTP API (aiohttp), with vLLM 0.10.1.1's shapes (vllm-ground-truth.md §5).

Also GET /twin/requests: per request, the receive time and when each chunk was actually written (after the
write returned), next to the engine's intended (model) time, so a benchmark client can be checked against it.
"""

import collections
import json
import os
import re
import time
import uuid
from pathlib import Path

from aiohttp import web
from prometheus_client import REGISTRY, generate_latest

from vllm_twin import VERSION, errors, logfmt, timing
from vllm_twin.engine_client import Delta, Request
from vllm_twin.tokenizer import Detokenizer

# Field names and types of vLLM 0.10.1.1's request models (protocol.py), extracted from the wheel.
SCHEMAS = json.loads(Path(__file__).with_name("request_fields.json").read_text())["models"]
UNSUPPORTED_MEDIA = ["Unsupported Media Type: Only 'application/json' is allowed"]
TRUE_STRINGS = {"1", "on", "t", "true", "y", "yes"}
FALSE_STRINGS = {"0", "off", "f", "false", "n", "no"}
SAMPLING_EPS, MAX_TEMP = 1e-5, 1e-2

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROUTES = [
    ("/openapi.json", "GET, HEAD"),
    ("/docs", "GET, HEAD"),
    ("/docs/oauth2-redirect", "GET, HEAD"),
    ("/redoc", "GET, HEAD"),
    ("/health", "GET"),
    ("/load", "GET"),
    ("/ping", "POST"),
    ("/ping", "GET"),
    ("/tokenize", "POST"),
    ("/detokenize", "POST"),
    ("/v1/models", "GET"),
    ("/version", "GET"),
    ("/v1/responses", "POST"),
    ("/v1/responses/{response_id}", "GET"),
    ("/v1/responses/{response_id}/cancel", "POST"),
    ("/v1/chat/completions", "POST"),
    ("/v1/completions", "POST"),
    ("/v1/embeddings", "POST"),
    ("/pooling", "POST"),
    ("/classify", "POST"),
    ("/score", "POST"),
    ("/v1/score", "POST"),
    ("/v1/audio/transcriptions", "POST"),
    ("/v1/audio/translations", "POST"),
    ("/rerank", "POST"),
    ("/v1/rerank", "POST"),
    ("/v2/rerank", "POST"),
    ("/scale_elastic_ep", "POST"),
    ("/is_scaling_elastic_ep", "POST"),
    ("/invocations", "POST"),
    ("/metrics", "GET"),
]


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def error_response(message, err_type, code):
    body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    return web.Response(status=code, text=dumps(body), content_type="application/json")


def validation_error(errors):
    """FastAPI's RequestValidationError as vLLM returns it: 400 with str(errors) as the message."""
    return error_response(str(errors), "Bad Request", 400)


# --- pydantic's lax validation (python mode, as FastAPI runs it on the parsed JSON body) ------------------------
def _tag(t):
    """How pydantic names a union member in an error's loc (`str`, `list[str]`, `StreamOptions`)."""
    if isinstance(t, str):
        return t
    kind, inner = next(iter(t.items()))
    if kind == "list":
        return f"list[{_tag(inner)}]"
    if kind == "dict":
        return f"dict[str,{_tag(inner)}]"
    if kind == "optional":
        return f"nullable[{_tag(inner)}]"
    if kind == "model":
        return inner
    if kind == "literal":
        return "literal[" + ",".join(repr(v) for v in inner) + "]"
    return "union[" + ",".join(_tag(m) for m in inner) + "]"


def _error(kind, loc, msg, value, ctx=None):
    err = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx is not None:
        err["ctx"] = ctx
    return err


def _scalar(t, value, loc, strict):
    """(value, errors) for int, float, bool and str, with pydantic 2.11's lax coercions and messages."""
    if t == "str":
        return (
            (value, [])
            if isinstance(value, str)
            else (None, [_error("string_type", loc, "Input should be a valid string", value)])
        )
    if t == "bool":
        if isinstance(value, bool):
            return value, []
        if not strict and isinstance(value, (int, float)) and value in (0, 1):
            return bool(value), []
        if not strict and (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))):
            low = value.lower() if isinstance(value, str) else None
            if low in TRUE_STRINGS or low in FALSE_STRINGS:
                return low in TRUE_STRINGS, []
            return None, [_error("bool_parsing", loc, "Input should be a valid boolean, unable to interpret input", value)]
        return None, [_error("bool_type", loc, "Input should be a valid boolean", value)]
    if t == "int":
        if isinstance(value, int) and not (strict and isinstance(value, bool)):
            return int(value), []
        if not strict and isinstance(value, float):
            if value.is_integer():
                return int(value), []
            return None, [
                _error("int_from_float", loc, "Input should be a valid integer, got a number with a fractional part", value)
            ]
        if not strict and isinstance(value, str):
            text = value.strip()
            try:
                return int(text), []
            except ValueError:
                if re.fullmatch(r"[+-]?\d+\.0*", text):
                    return int(text.split(".")[0]), []
            return None, [
                _error("int_parsing", loc, "Input should be a valid integer, unable to parse string as an integer", value)
            ]
        return None, [_error("int_type", loc, "Input should be a valid integer", value)]
    if t == "float":
        if isinstance(value, (int, float)) and not (strict and isinstance(value, bool)):
            return float(value), []
        if not strict and isinstance(value, str):
            try:
                return float(value.strip()), []
            except ValueError:
                return None, [
                    _error("float_parsing", loc, "Input should be a valid number, unable to parse string as a number", value)
                ]
        return None, [_error("float_type", loc, "Input should be a valid number", value)]
    return value, []  # any


def check_value(t, value, loc, strict=False):
    if isinstance(t, str):
        return _scalar(t, value, loc, strict)
    kind, inner = next(iter(t.items()))
    if kind == "optional":
        return (None, []) if value is None else check_value(inner, value, loc, strict)
    if kind == "list":
        if not isinstance(value, list):
            return None, [_error("list_type", loc, "Input should be a valid list", value)]
        out, errs = [], []
        for i, item in enumerate(value):
            v, e = check_value(inner, item, (*loc, i), strict)
            out.append(v)
            errs += e
        return out, errs
    if kind == "dict":
        if not isinstance(value, dict):
            return None, [_error("dict_type", loc, "Input should be a valid dictionary", value)]
        out, errs = {}, []
        for key, item in value.items():
            out[key], e = check_value(inner, item, (*loc, key), strict)
            errs += e
        return out, errs
    if kind == "literal":
        if value in inner and any(type(value) is type(v) for v in inner):
            return value, []
        expected = " or ".join(filter(None, [", ".join(repr(v) for v in inner[:-1]), repr(inner[-1])]))
        return None, [_error("literal_error", loc, f"Input should be {expected}", value, {"expected": expected})]
    if kind == "model":
        if not isinstance(value, dict):
            msg = f"Input should be a valid dictionary or instance of {inner}"
            return None, [_error("model_type", loc, msg, value, {"class_name": inner})]
        return check_fields(inner, value, loc)
    # union, pydantic's smart mode: an exact (strict) match first, then the first lax match, else every member's errors
    for strict_pass in (True, False):
        for member in inner:
            v, e = check_value(member, value, loc, strict_pass)
            if not e:
                return v, []
    errs = []
    for member in inner:
        errs += check_value(member, value, (*loc, _tag(member)), False)[1]
    return None, errs


def check_fields(model, body, loc=("body",)):
    """A model's fields in declaration order (as pydantic reports them); unknown keys are kept and logged."""
    out, errs = dict(body), []
    names = set()
    for field in SCHEMAS[model]:
        name = field["name"]
        names.add(name)
        if name not in body:
            if field.get("required"):
                errs.append(_error("missing", (*loc, name), "Field required", body))
            continue
        value, e = check_value(field["type"], body[name], (*loc, name))
        if not e and value is not None:
            for bound, kind, word in (
                ("ge", "greater_than_equal", "greater than or equal to"),
                ("le", "less_than_equal", "less than or equal to"),
            ):
                limit = field.get(bound)
                if limit is not None and (value < limit if bound == "ge" else value > limit):
                    e = [_error(kind, (*loc, name), f"Input should be {word} {limit}", body[name], {bound: limit})]
        errs += e
        out[name] = value
    if not errs and any(k not in names for k in body):
        logfmt.warning("protocol.py:81", "The following fields were present in the request but ignored: %s", set(body) - names)
    return out, errs


def model_validator_error(body, message):
    """A ValueError from a `mode="before"` model validator, as FastAPI reports it."""
    return validation_error(
        [
            {
                "type": "value_error",
                "loc": ("body",),
                "msg": f"Value error, {message}",
                "input": body,
                "ctx": {"error": ValueError(message)},
            }
        ]
    )


def before_validators(kind, body):
    """ChatCompletionRequest / CompletionRequest `mode="before"` validators, in the order pydantic runs them (the
    last defined first). Returns the message of the first that fails, or None."""
    if body.get("cache_salt") is not None and (not isinstance(body["cache_salt"], str) or not body["cache_salt"]):
        return "Parameter 'cache_salt' must be a non-empty string if provided."
    if kind == "chat" and body.get("continue_final_message") and body.get("add_generation_prompt"):
        return "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
    if kind == "completion":
        if body.get("prompt") is None and body.get("prompt_embeds") is None:
            return "At least one of `prompt` or `prompt_embeds` must be set."
        if body.get("stream_options") and not body.get("stream"):
            return "Stream options can only be defined when `stream=True`."
    prompt_logprobs = body.get("prompt_logprobs")
    if prompt_logprobs is not None:
        if body.get("stream") and prompt_logprobs > 0:
            return "`prompt_logprobs` are not available when `stream=True`."
        if prompt_logprobs < 0:
            return "`prompt_logprobs` must be a positive value."
    if kind == "chat":
        top = body.get("top_logprobs")
        if top is not None:
            if top < 0:
                return "`top_logprobs` must be a positive value."
            if top > 0 and not body.get("logprobs"):
                return "when using `top_logprobs`, `logprobs` must be set to true."
        if body.get("stream_options") and not body.get("stream"):
            return "Stream options can only be defined when `stream=True`."
    elif body.get("logprobs") is not None and body["logprobs"] < 0:
        return "`logprobs` must be a positive value."
    return None


def sampling_params_error(p):
    """SamplingParams.__post_init__ / _verify_args / _verify_greedy_sampling (vllm/sampling_params.py), in order."""
    if p["n"] < 1:
        return f"n must be at least 1, got {p['n']}."
    checks = [
        (not -2.0 <= p["presence_penalty"] <= 2.0, f"presence_penalty must be in [-2, 2], got {p['presence_penalty']}."),
        (not -2.0 <= p["frequency_penalty"] <= 2.0, f"frequency_penalty must be in [-2, 2], got {p['frequency_penalty']}."),
        (p["repetition_penalty"] <= 0.0, f"repetition_penalty must be greater than zero, got {p['repetition_penalty']}."),
        (p["temperature"] < 0.0, f"temperature must be non-negative, got {p['temperature']}."),
        (not 0.0 < p["top_p"] <= 1.0, f"top_p must be in (0, 1], got {p['top_p']}."),
        (p["top_k"] < -1, f"top_k must be 0 (disable), or at least 1, got {p['top_k']}."),
        (not 0.0 <= p["min_p"] <= 1.0, f"min_p must be in [0, 1], got {p['min_p']}."),
        (p["max_tokens"] < 1, f"max_tokens must be at least 1, got {p['max_tokens']}."),
        (p["min_tokens"] < 0, f"min_tokens must be greater than or equal to 0, got {p['min_tokens']}."),
        (
            p["min_tokens"] > p["max_tokens"],
            f"min_tokens must be less than or equal to max_tokens={p['max_tokens']}, got {p['min_tokens']}.",
        ),
        (any(not s for s in p["stop"]), "stop cannot contain an empty string."),
        (p["n"] > 1 and p["temperature"] < SAMPLING_EPS, f"n must be 1 when using greedy sampling, got {p['n']}."),
    ]
    return next((msg for failed, msg in checks if failed), None)


class Trace:
    """Ground-truth timestamps of what was actually sent (bounded in memory; also JSONL if VLLM_TWIN_TRACE)."""

    def __init__(self):
        self.records = collections.deque(maxlen=10000)
        path = os.environ.get("VLLM_TWIN_TRACE")
        self.file = open(path, "a", buffering=1) if path else None

    def start(self, rid, endpoint, stream):
        rec = {
            "id": rid,
            "endpoint": endpoint,
            "stream": stream,
            "recv_ns": time.perf_counter_ns(),
            "recv_wall": time.time(),
            "simulated": True,
            "chunks": [],
        }
        self.records.append(rec)
        return rec

    @staticmethod
    def chunk(rec, delta):
        rec["chunks"].append(
            {
                "tokens": delta.tokens,
                "model_ns": delta.model_ns,
                "engine_ns": delta.engine_ns,
                "write_ns": time.perf_counter_ns(),
                "write_wall": time.time(),
            }
        )

    def finish(self, rec, req):
        rec.update(prompt_tokens=len(req.prompt_ids), completion_tokens=req.num_output, done_ns=time.perf_counter_ns())
        if self.file:
            self.file.write(json.dumps(rec) + "\n")


class Api:
    def __init__(self, state):
        self.s = state  # serve.State: args, names, tokenizer, textgen, engine, metrics, spec, defaults
        self.trace = Trace()
        self.ready = True
        self.dead = False  # EngineCore_0 died (serve.engine_died)

    def app(self):
        app = web.Application(middlewares=[self.middleware])
        r = app.router
        r.add_get("/health", self.health)
        r.add_route("*", "/ping", self.health)
        r.add_get("/load", self.load)
        r.add_get("/v1/models", self.models)
        r.add_get("/version", self.version)
        r.add_get("/metrics", self.metrics)
        r.add_get("/metrics/", self.metrics)
        r.add_post("/tokenize", self.tokenize)
        r.add_post("/detokenize", self.detokenize)
        r.add_post("/v1/chat/completions", self.chat)
        r.add_post("/v1/completions", self.completions)
        r.add_get("/twin/requests", self.twin_requests)
        r.add_delete("/twin/requests", self.twin_requests)
        app.on_response_prepare.append(self.on_prepare)
        return app

    @web.middleware
    async def middleware(self, request, handler):
        keys = self.s.api_keys
        if keys and request.path.startswith("/v1") and request.method != "OPTIONS":
            if request.headers.get("Authorization") not in {f"Bearer {k}" for k in keys}:
                return web.Response(status=401, text=dumps({"error": "Unauthorized"}), content_type="application/json")
        start = time.perf_counter()
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            detail = "Not Found" if exc.status == 404 else exc.reason
            resp = web.Response(status=exc.status, text=dumps({"detail": detail}), content_type="application/json")
        route = request.match_info.route.resource
        handler_name = route.canonical if route is not None else "none"
        self.s.metrics.http.observe(
            handler_name,
            request.method,
            resp.status,
            request.content_length or 0,
            resp.content_length or 0,
            time.perf_counter() - start,
        )
        return resp

    async def on_prepare(self, request, response):
        if request.path in ("/health", "/ping") or response.get("twin_bare"):
            response.headers.pop("Content-Type", None)
        if not self.s.args.disable_uvicorn_access_log:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            host = f"{peer[0]}:{peer[1]}" if peer else "-"
            logfmt.uvicorn(
                f'{host} - "{request.method} {request.path_qs} HTTP/{request.version.major}.'
                f'{request.version.minor}" {response.status} {response.reason}'
            )

    async def health(self, request):
        """200 with an empty body; with the engine dead, check_health raises EngineDeadError and the launcher's
        exception handler answers an empty 500 (0.10.1.1; 503 came in a later version)."""
        return web.Response(status=200 if self.ready and not self.dead else 500)

    @staticmethod
    def engine_dead_response():
        """EngineDeadError raised in the handler: launcher.py's handler returns `Response(status_code=500)`."""
        resp = web.Response(status=500)
        resp["twin_bare"] = True  # no Content-Type, as Starlette's bare Response
        return resp

    @staticmethod
    def internal_error(exc_line, frames):
        """An exception FastAPI does not handle: Starlette answers a plain-text 500, uvicorn logs the traceback."""
        logfmt.uvicorn_error("Exception in ASGI application\n" + errors.render(frames, exc_line))
        return web.Response(status=500, text="Internal Server Error", content_type="text/plain")

    async def load(self, request):
        return web.json_response({"server_load": len(self.s.engine.requests)}, dumps=dumps)

    async def version(self, request):
        # "version" is what vLLM answers; "twin" says that the numbers are simulated and at which time scale.
        return web.json_response({"version": VERSION, "twin": timing.twin_label()}, dumps=dumps)

    async def models(self, request):
        created = int(time.time())
        cards = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": self.s.args.model,
                "parent": None,
                "max_model_len": self.s.spec.max_model_len,
                "permission": [
                    {
                        "id": f"modelperm-{uuid.uuid4().hex}",
                        "object": "model_permission",
                        "created": created,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
            for name in self.s.names
        ]
        return web.json_response({"object": "list", "data": cards}, dumps=dumps)

    async def metrics(self, request):
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def twin_requests(self, request):
        if request.method == "DELETE":
            self.trace.records.clear()
        return web.json_response(
            {
                **timing.twin_label(),
                "clock": "perf_counter_ns is CLOCK_MONOTONIC",
                "requests": list(self.trace.records),
            }
        )

    async def _body(self, request, kind=None):
        """The body as FastAPI gets it: JSON decode errors, vLLM's content-type dependency, then (for chat and
        completions) the request model's validation. Returns (body, error response)."""
        raw = await request.read()
        content_type = request.headers.get("Content-Type")
        is_json = content_type is None or re.match(r"\s*application/([^;]*\+)?json\s*(;|$)", content_type, re.I)
        body = None
        if raw and is_json:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                pos, msg = getattr(exc, "pos", 0), getattr(exc, "msg", str(exc))
                return None, validation_error(
                    [
                        {
                            "type": "json_invalid",
                            "loc": ("body", pos),
                            "msg": "JSON decode error",
                            "input": {},
                            "ctx": {"error": msg},
                        }
                    ]
                )
        if (content_type or "").split(";", 1)[0].strip().lower() != "application/json":
            return None, validation_error(UNSUPPORTED_MEDIA)
        if body is None:
            return None, validation_error([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
        if not isinstance(body, dict):
            if kind is None:
                return None, validation_error(
                    [
                        {
                            "type": "model_attributes_type",
                            "loc": ("body",),
                            "msg": "Input should be a valid dictionary or object to extract fields from",
                            "input": body,
                        }
                    ]
                )
            # The before validators call body.get(): an AttributeError that nothing turns into a 400.
            frames = [
                (
                    errors.sp("vllm/entrypoints/openai/protocol.py"),
                    384 if kind == "chat" else 934,
                    "check_cache_salt_support",
                    'if data.get("cache_salt") is not None:',
                )
            ]
            return None, self.internal_error(f"AttributeError: '{type(body).__name__}' object has no attribute 'get'", frames)
        if kind is None:
            return body, None
        try:
            message = before_validators(kind, body)
        except TypeError as exc:  # a string compared with 0 in check_logprobs: not a ValueError, so not a 400
            frames = [(errors.sp("vllm/entrypoints/openai/protocol.py"), 811, "check_logprobs", "if prompt_logprobs < 0:")]
            return None, self.internal_error(f"TypeError: {exc}", frames)
        if message:
            return None, model_validator_error(body, message)
        values, errs = check_fields("ChatCompletionRequest" if kind == "chat" else "CompletionRequest", body)
        if errs:
            return None, validation_error(errs)
        return values, None

    def _check_model(self, body, chat):
        model = body.get("model")
        if model is not None and model not in self.s.names:
            message = f"The model `{model}` does not exist."
            if chat:
                logfmt.log(
                    "ERROR",
                    "serving_chat.py:169",
                    "Error with model %s",
                    f"error=ErrorInfo(message={message!r}, type='NotFoundError', param=None, code=404)",
                )
            return error_response(message, "NotFoundError", 404)
        return None

    async def tokenize(self, request):
        body, err = await self._body(request)
        if err:
            return err
        if "messages" in body:
            ids = self.s.tokenizer.encode(self.s.tokenizer.render_chat(body["messages"], body.get("add_generation_prompt", True)))
        else:
            ids = self._prompt_ids(body.get("prompt", ""), body.get("add_special_tokens", True))
        return web.json_response(
            {"count": len(ids), "max_model_len": self.s.spec.max_model_len, "tokens": ids, "token_strs": None}, dumps=dumps
        )

    async def detokenize(self, request):
        body, err = await self._body(request)
        if err:
            return err
        # vLLM's /detokenize keeps special tokens (skip_special_tokens=False).
        text = self.s.tokenizer.decode(body.get("tokens", []), skip_special_tokens=False)
        return web.json_response({"prompt": text}, dumps=dumps)

    def _prompt_ids(self, prompt, add_special=True):
        tok = self.s.tokenizer
        if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
            return list(prompt)
        ids = tok.encode(prompt if isinstance(prompt, str) else " ".join(map(str, prompt)))
        bos = tok.special.get(tok.bos) if add_special and not tok.harmony else None
        return ([bos] if bos is not None else []) + ids

    def _check_prompt(self, body, prompt_ids, chat):
        """serving_engine._validate_input: the prompt and max_tokens against the context length. Chat wraps the
        ValueError as f"{e} {e.__cause__}" (so the message ends in " None"), completions as str(e)."""
        limit, n = self.s.spec.max_model_len, len(prompt_ids)
        max_tokens = (body.get("max_completion_tokens") or body.get("max_tokens")) if chat else body.get("max_tokens")
        message = None
        if n >= limit:
            message = (
                f"This model's maximum context length is {limit} tokens. However, your request has {n} input tokens. "
                "Please reduce the length of the input messages."
            )
        elif max_tokens is not None and n + max_tokens > limit:
            message = (
                f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's maximum context "
                f"length is {limit} tokens and your request has {n} input tokens ({max_tokens} > {limit} - {n})."
            )
        if message is None:
            return None
        site = "serving_chat.py:245" if chat else "serving_completion.py:138"
        frames = [
            (
                errors.sp("vllm/entrypoints/openai/serving_engine.py"),
                622 if n >= limit else 630,
                "_validate_input",
                "raise ValueError(",
            )
        ]
        logfmt.log("ERROR", site, "Error in preprocessing prompt inputs\n%s", errors.render(frames, f"ValueError: {message}"))
        return error_response(f"{message} None" if chat else message, "BadRequestError", 400)

    def _sampling(self, body, prompt_ids):
        """get_max_tokens + to_sampling_params: the effective parameters, or the ValueError's message."""
        limit = self.s.spec.max_model_len
        requested = body.get("max_completion_tokens") or body.get("max_tokens")
        defaults = self.s.defaults
        candidates = [limit - len(prompt_ids), requested, defaults.get("max_new_tokens")]
        stop = body.get("stop") or []

        def pick(key, fallback):
            value = body.get(key)
            return defaults.get(key, fallback) if value is None else value

        params = {
            "n": 1 if body.get("n") is None else body["n"],
            "presence_penalty": body.get("presence_penalty") or 0.0,
            "frequency_penalty": body.get("frequency_penalty") or 0.0,
            "repetition_penalty": pick("repetition_penalty", 1.0),
            "temperature": pick("temperature", 1.0),
            "top_p": pick("top_p", 1.0),
            "top_k": pick("top_k", 0),
            "min_p": pick("min_p", 0.0),
            "max_tokens": min(v for v in candidates if v is not None),
            "min_tokens": body.get("min_tokens") or 0,
            "stop": [stop] if isinstance(stop, str) else list(stop),
        }
        if 0 < params["temperature"] < MAX_TEMP:
            logfmt.warning(
                "sampling_params.py:311",
                "temperature %s is less than %s, which may cause numerical errors nan or inf in tensors. We have "
                "maxed it out to %s.",
                params["temperature"],
                MAX_TEMP,
                MAX_TEMP,
            )
            params["temperature"] = MAX_TEMP
        return params, sampling_params_error(params)

    def _submit(self, body, prompt_ids, chat):
        """Validate against the context and the sampling parameters, build and queue the engine request."""
        err = self._check_prompt(body, prompt_ids, chat)
        if err:
            return None, err
        params, message = self._sampling(body, prompt_ids)
        if message:
            return None, error_response(message, "BadRequestError", 400)
        if params["n"] != 1:
            return None, error_response("vLLM twin: only n=1 is emulated.", "BadRequestError", 400)
        gen = self.s.textgen
        base = gen.base(prompt_ids, params["temperature"], body.get("seed"))
        req = Request(
            prompt_ids,
            base,
            bool(body.get("ignore_eos")),
            Detokenizer(self.s.tokenizer, harmony_chat=chat),
            params["max_tokens"],
            params["min_tokens"],
            params["stop"],
        )
        self.s.engine.add(req, self.s.tokenizer.eos_id)
        return req, None

    async def chat(self, request):
        body, err = await self._body(request, "chat")
        if err:
            return err
        err = self._check_model(body, chat=True)
        if err:
            return err
        if self.dead:
            return self.engine_dead_response()
        prompt_ids = self.s.tokenizer.encode(
            self.s.tokenizer.render_chat(body["messages"], body.get("add_generation_prompt", True))
        )
        return await self._generate(request, body, prompt_ids, chat=True)

    async def completions(self, request):
        body, err = await self._body(request, "completion")
        if err:
            return err
        err = self._check_model(body, chat=False)
        if err:
            return err
        if self.dead:
            return self.engine_dead_response()
        if body.get("suffix") is not None:
            return error_response("suffix is not currently supported", "BadRequestError", 400)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
            if len(prompt) != 1:
                return error_response("vLLM twin: only one prompt per request is emulated.", "BadRequestError", 400)
            prompt = prompt[0]
        return await self._generate(request, body, self._prompt_ids(prompt, body.get("add_special_tokens", True)), chat=False)

    async def _generate(self, request, body, prompt_ids, chat):
        req, err = self._submit(body, prompt_ids, chat)
        if err:
            return err
        rid = ("chatcmpl-" if chat else "cmpl-") + (request.headers.get("X-Request-Id") or uuid.uuid4().hex)
        model = body.get("model") or self.s.names[0]
        rec = self.trace.start(rid, request.path, bool(body.get("stream")))
        try:
            if body.get("stream"):
                try:
                    return await self._stream(request, body, req, rid, model, rec, chat)
                except ConnectionResetError:  # the client went away: the request is aborted, as in vLLM
                    return web.Response(status=499)
            return await self._complete(request, req, rid, model, rec, chat)
        finally:
            self.s.engine.abort(req)
            self.trace.finish(rec, req)

    def _usage(self, req, done):
        usage = {"prompt_tokens": len(req.prompt_ids), "total_tokens": len(req.prompt_ids) + done, "completion_tokens": done}
        if self.s.args.enable_prompt_tokens_details and req.num_cached:
            usage["prompt_tokens_details"] = {"cached_tokens": req.num_cached}
        return usage

    async def _complete(self, request, req, rid, model, rec, chat):
        finish = stop_reason = None
        while finish is None:
            delta = await req.queue.get()
            finish, stop_reason = delta.finish_reason, delta.stop_reason
        usage = {"prompt_tokens_details": None, **self._usage(req, req.num_output)}
        usage = {k: usage[k] for k in ("prompt_tokens", "total_tokens", "completion_tokens", "prompt_tokens_details")}
        if chat:
            choice = {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": req.text,
                    "refusal": None,
                    "annotations": None,
                    "audio": None,
                    "function_call": None,
                    "tool_calls": [],
                    "reasoning_content": req.reasoning or None,
                },
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": stop_reason,
            }
        else:
            choice = {
                "index": 0,
                "text": req.text,
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": stop_reason,
                "prompt_logprobs": None,
            }
        body = {
            "id": rid,
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": usage,
        }
        if chat:
            body["prompt_logprobs"] = None
        body["kv_transfer_params"] = None
        resp = web.json_response(body, dumps=dumps)
        await resp.prepare(request)
        await resp.write_eof()
        Trace.chunk(rec, Delta(req.text, req.num_output, finish, stop_reason, delta.model_ns, engine_ns=delta.engine_ns))
        return resp

    async def _stream(self, request, body, req, rid, model, rec, chat):
        opts = body.get("stream_options")
        include_usage = self.s.args.enable_force_include_usage or (
            opts is not None and opts.get("include_usage", True) is not False
        )
        continuous = include_usage and bool(opts and opts.get("continuous_usage_stats"))
        created = int(time.time())
        head = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": created, "model": model}
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        prompt_n = len(req.prompt_ids)

        def usage(done):
            return {"prompt_tokens": prompt_n, "total_tokens": prompt_n + done, "completion_tokens": done}

        def event(choice, done):
            chunk = dict(head, choices=[choice])
            if not chat:
                chunk["usage"] = None
            if continuous:
                chunk["usage"] = usage(done)
            return f"data: {dumps(chunk)}\n\n"

        sent, finish = 0, None
        while finish is None:
            delta = await req.queue.get()
            finish = delta.finish_reason
            if finish == "abort":
                break
            out = ""
            if chat and sent == 0:
                out += event(
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}, 0
                )
            sent += delta.tokens
            if chat:
                fields = {"reasoning_content": delta.reasoning} if delta.reasoning else {}
                if delta.text or not delta.reasoning:
                    fields["content"] = delta.text
                choice = {"index": 0, "delta": fields, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": delta.text, "logprobs": None, "finish_reason": finish, "stop_reason": None}
            if finish:
                choice["stop_reason"] = delta.stop_reason
            await resp.write((out + event(choice, sent)).encode())
            Trace.chunk(rec, delta)
        if include_usage:
            chunk = dict(head, choices=[], usage=self._usage(req, sent))
            await resp.write(f"data: {dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
