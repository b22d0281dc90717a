"""The OpenAI-compatible HTTP API (aiohttp), with vLLM 0.10.1.1's shapes (vllm-ground-truth.md §5).

Also GET /twin/requests: per request, the receive time and when each chunk was actually written (after the
write returned), next to the engine's intended (model) time, so a benchmark client can be checked against it.
"""

import collections
import json
import os
import time
import uuid

from aiohttp import web
from prometheus_client import REGISTRY, generate_latest

from vllm_twin import VERSION, logfmt
from vllm_twin.engine import Delta, Request
from vllm_twin.tokenizer import Detokenizer

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
            {"tokens": delta.tokens, "model_ns": delta.model_ns, "write_ns": time.perf_counter_ns(), "write_wall": time.time()}
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
        key = self.s.args.api_key
        if key and request.path.startswith("/v1") and request.method != "OPTIONS":
            if request.headers.get("Authorization") != f"Bearer {key}":
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
        if response.status == 200 and request.path in ("/health", "/ping"):
            response.headers.pop("Content-Type", None)
        if not self.s.args.disable_uvicorn_access_log:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            host = f"{peer[0]}:{peer[1]}" if peer else "-"
            logfmt.uvicorn(
                f'{host} - "{request.method} {request.path_qs} HTTP/{request.version.major}.'
                f'{request.version.minor}" {response.status} {response.reason}'
            )

    async def health(self, request):
        return web.Response(status=200 if self.ready else 500)

    async def load(self, request):
        return web.json_response({"server_load": len(self.s.engine.running) + len(self.s.engine.waiting)}, dumps=dumps)

    async def version(self, request):
        return web.json_response({"version": VERSION}, dumps=dumps)

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
            {"simulated": True, "clock": "perf_counter_ns is CLOCK_MONOTONIC", "requests": list(self.trace.records)}
        )

    async def _body(self, request):
        try:
            body = await request.json()
        except ValueError as exc:
            return None, validation_error(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", 0),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": str(exc)},
                    }
                ]
            )
        if not isinstance(body, dict):
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
        return body, None

    def _check_model(self, body):
        model = body.get("model")
        if model is not None and model not in self.s.names:
            return error_response(f"The model `{model}` does not exist.", "NotFoundError", 404)
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
        tok = self.s.tokenizer
        detok = Detokenizer(tok)
        text = "".join(detok.feed(t)[1] for t in body.get("tokens", []))
        return web.json_response({"prompt": text}, dumps=dumps)

    def _prompt_ids(self, prompt, add_special=True):
        tok = self.s.tokenizer
        if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
            return list(prompt)
        ids = tok.encode(prompt if isinstance(prompt, str) else " ".join(map(str, prompt)))
        bos = tok.special.get(tok.bos) if add_special and not tok.harmony else None
        return ([bos] if bos is not None else []) + ids

    def _submit(self, body, prompt_ids, chat):
        """Validate sampling params, build and queue the engine request; returns (request, error response)."""
        if body.get("stream_options") is not None and not body.get("stream"):
            msg = "Stream options can only be defined when `stream=True`."
            return None, validation_error(
                [
                    {
                        "type": "value_error",
                        "loc": ("body",),
                        "msg": f"Value error, {msg}",
                        "input": body,
                        "ctx": {"error": ValueError(msg)},
                    }
                ]
            )
        if (body.get("n") or 1) != 1:
            return None, error_response("vLLM twin: only n=1 is emulated.", "BadRequestError", 400)
        limit = self.s.spec.max_model_len
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if max_tokens is not None and len(prompt_ids) + max_tokens > limit:
            return None, error_response(
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{len(prompt_ids) + max_tokens} tokens ({len(prompt_ids)} in the messages, {max_tokens} in the "
                "completion). Please reduce the length of the messages or completion.",
                "BadRequestError",
                400,
            )
        if len(prompt_ids) >= limit:
            return None, error_response(
                f"This model's maximum context length is {limit} tokens. However, your request has "
                f"{len(prompt_ids)} input tokens. Please reduce the length of the input messages.",
                "BadRequestError",
                400,
            )
        temperature = body.get("temperature")
        if temperature is None:
            temperature = self.s.defaults.get("temperature", 1.0)
        stop = body.get("stop") or []
        gen = self.s.textgen
        base = gen.base(prompt_ids, temperature, body.get("seed"))
        req = Request(
            prompt_ids,
            gen.tokens(base, bool(body.get("ignore_eos"))),
            Detokenizer(self.s.tokenizer, harmony_chat=chat),
            max_tokens or limit - len(prompt_ids),
            body.get("min_tokens") or 0,
            [stop] if isinstance(stop, str) else stop,
            self.s.tokenizer.eos_id,
        )
        self.s.engine.add(req)
        return req, None

    async def chat(self, request):
        body, err = await self._body(request)
        if err:
            return err
        if not isinstance(body.get("messages"), list):
            return validation_error([{"type": "missing", "loc": ("body", "messages"), "msg": "Field required", "input": body}])
        err = self._check_model(body)
        if err:
            return err
        prompt_ids = self.s.tokenizer.encode(
            self.s.tokenizer.render_chat(body["messages"], body.get("add_generation_prompt", True))
        )
        return await self._generate(request, body, prompt_ids, chat=True)

    async def completions(self, request):
        body, err = await self._body(request)
        if err:
            return err
        prompt = body.get("prompt")
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
            if len(prompt) != 1:
                return error_response("vLLM twin: only one prompt per request is emulated.", "BadRequestError", 400)
            prompt = prompt[0]
        if prompt is None:
            return validation_error([{"type": "missing", "loc": ("body", "prompt"), "msg": "Field required", "input": body}])
        err = self._check_model(body)
        if err:
            return err
        return await self._generate(request, body, self._prompt_ids(prompt), chat=False)

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

    async def _complete(self, request, req, rid, model, rec, chat):
        finish = stop_reason = None
        while finish is None:
            delta = await req.queue.get()
            finish, stop_reason = delta.finish_reason, delta.stop_reason
        usage = {
            "prompt_tokens": len(req.prompt_ids),
            "total_tokens": len(req.prompt_ids) + req.num_output,
            "completion_tokens": req.num_output,
            "prompt_tokens_details": None,
        }
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
        Trace.chunk(rec, Delta(req.text, req.num_output, finish, stop_reason, delta.model_ns))
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
            chunk = dict(head, choices=[], usage=usage(sent))
            await resp.write(f"data: {dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
