"""The HTTP API over one `StreamPool`: a Starlette ASGI app.

Endpoints (JSON in and out; every error is `{"error": "..."}` with a 4xx/5xx status):

    GET  /v1/health                   {"status": "ok", "resident": 12}
    GET  /v1/model                    the model and the pool: input/output/state tensors, fingerprint...
    POST /v1/step                     {"key": "sensor-1", "x": [0.1, ...]} -> {"key": "sensor-1", "y": [...]}
                                      {"samples": [{"key": k, "x": [...]}, ...]} -> {"outputs": [{"key": k, "y": [...]}, ...]}
    POST /v1/reset                    {"key": k}: the key's next step starts from the zero state
    POST /v1/remove                   {"key": k}: forgets the key and its stored state
    POST /v1/flush                    writes every changed state to the store now
    GET  /v1/models/<name>            TensorFlow Serving's model status
    POST /v1/models/<name>:predict    TensorFlow Serving's row format: {"instances": [{"key": k, "x": [...]}, ...]}
                                      -> {"predictions": [[...], ...]}, one step per instance, in order

Keys are JSON strings or integers ("1" and 1 are two keys). A request with
several samples is all or nothing: when one is refused, no key moves. Status
codes: 400 a refused request (bad JSON, fields, key or x, NaN/Inf; or an x so
large that a key's state became NaN: that key is reset, and the error lists the
outputs of the request's other keys, whose steps stand), 404 an
unknown path or model name, 405 a wrong method, 409 a key whose stored state is
damaged or another model's (reset or remove it), 413 a body over the limit,
500 the interpreter failed, 503 the store failed or the server is shutting down.

Steps run in the event loop's thread: a step of a small model costs tens of
microseconds, less than handing it to a worker thread would.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tflstm.runtime.errors import InputError, ModelError, StateError
from tflstm.runtime.pool import NonFiniteStateError, StreamPool
from tflstm.runtime.state import state_nbytes
from tflstm.runtime.store import StoreError
from tflstm.serve.defaults import MAX_BODY_BYTES
from tflstm.serve.protocol import RequestError, check_fields, parse_json, parse_key, parse_samples, parse_x, to_json

log = logging.getLogger("tflstm.serve")
TF_SERVING_SIGNATURES = ("step", "serving_default")


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Api:
    """The endpoints, bound to one pool."""

    def __init__(self, pool: StreamPool, name: str, max_body_bytes: int) -> None:
        self.pool, self.name, self.max_body_bytes = pool, name, max_body_bytes

    async def body(self, request: Request) -> dict[str, Any]:
        """The request's JSON object, read up to the size limit."""
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_body_bytes:
                raise _HTTPError(413, f"The body may hold at most {self.max_body_bytes} bytes; Content-Length says {length[:20]}.")
            return parse_json(await request.body())  # the HTTP server reads no more than Content-Length
        chunks, size = [], 0  # chunked: counted as it arrives
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _HTTPError(413, f"The body may hold at most {self.max_body_bytes} bytes.")
            chunks.append(chunk)
        return parse_json(b"".join(chunks))

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "shutting down" if self.pool.closed else "ok", "resident": self.pool.resident},
                            status_code=503 if self.pool.closed else 200)

    async def model(self, request: Request) -> JSONResponse:
        pool, metadata = self.pool, self.pool.model.metadata
        features = metadata.inputs[0]
        return JSONResponse({
            "name": self.name,
            "kind": metadata.kind,
            "quantization": metadata.quantization,
            "fingerprint": metadata.fingerprint,
            "batch_size": metadata.batch_size,
            "backend": pool.model.backend,
            "input": {"name": features.name, "shape": [pool.model.input_depth], "dtype": "float32"},
            "outputs": [{"name": spec.name, "shape": list(spec.shape[2:] or spec.shape[-1:])} for spec in metadata.outputs],
            "states": [{"name": spec.name, "shape": list(spec.shape[1:]), "dtype": spec.dtype} for spec in metadata.states],
            "state_bytes": state_nbytes(metadata.states),
            "pool": {"max_resident": pool.max_resident, "resident": pool.resident, "idle_ttl": pool.idle_ttl},
        })

    async def step(self, request: Request) -> JSONResponse:
        body = await self.body(request)
        if "samples" in body:
            check_fields(body, ("samples",))
            outputs = self._step_samples(body["samples"], "samples")
            return JSONResponse({"outputs": [{"key": key, "y": y} for key, y in outputs.items()]})
        if set(body) != {"key", "x"}:
            raise RequestError('Expected {"key": ..., "x": [...]} or {"samples": [{"key": ..., "x": [...]}, ...]}, '
                               f"got the fields {sorted(body)}.")
        key, x = parse_key(body["key"]), parse_x(body["x"])
        return JSONResponse({"key": key, "y": to_json(self.pool.step(key, x))})

    def _step_samples(self, values: Any, field: str) -> dict[Any, Any]:
        """Steps the samples of a request's `field` (all or nothing): key -> JSON-ready output, in request order."""
        samples = parse_samples(values, field)
        outputs = self.pool.step_many(samples)
        return {key: to_json(outputs[key]) for key in samples}

    async def _on_key(self, request: Request, action: Callable[[Any], None], done: str) -> JSONResponse:
        """Runs `action` on the key of a {"key": ...} body; answers {"key": key, done: true}."""
        body = await self.body(request)
        check_fields(body, ("key",))
        key = parse_key(body["key"])
        action(key)
        return JSONResponse({"key": key, done: True})

    async def reset(self, request: Request) -> JSONResponse:
        return await self._on_key(request, self.pool.reset, "reset")

    async def remove(self, request: Request) -> JSONResponse:
        return await self._on_key(request, self.pool.remove, "removed")

    async def flush(self, request: Request) -> JSONResponse:
        self.pool.flush()
        return JSONResponse({"flushed": True})

    def _check_name(self, request: Request) -> None:
        name = request.path_params["name"]
        if name != self.name:
            raise _HTTPError(404, f"Model {name!r} not found: this server serves {self.name!r}.")

    async def model_status(self, request: Request) -> JSONResponse:
        self._check_name(request)
        return JSONResponse({"model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]})

    async def predict(self, request: Request) -> JSONResponse:
        self._check_name(request)
        body = await self.body(request)
        check_fields(body, ("instances",), ("signature_name",))
        signature = body.get("signature_name", TF_SERVING_SIGNATURES[0])
        if signature not in TF_SERVING_SIGNATURES:
            raise RequestError(f'"signature_name" must be one of {list(TF_SERVING_SIGNATURES)}, got {signature!r:.80}.')
        return JSONResponse({"predictions": list(self._step_samples(body["instances"], "instances").values())})


Endpoint = Callable[[Request], Awaitable[JSONResponse]]


def _answering_errors(pool: StreamPool, endpoint: Endpoint) -> Endpoint:
    """`endpoint` with every refusal turned into its JSON error response."""

    async def handle(request: Request) -> JSONResponse:
        try:
            return await endpoint(request)
        except _HTTPError as err:
            return _error(err.status, str(err))
        except (RequestError, InputError) as err:
            return _error(400, str(err))
        except NonFiniteStateError as err:  # a finite but huge x: those keys were reset, the others stepped
            outputs = [{"key": key, "y": to_json(y)} for key, y in err.outputs.items()]
            return JSONResponse({"error": str(err), **({"outputs": outputs} if outputs else {})}, status_code=400)
        except StoreError as err:
            log.error("state store failure: %s", err)
            return _error(503, f"The state store failed: {err}")
        except StateError as err:
            if pool.closed:
                return _error(503, "The server is shutting down.")
            return _error(409, str(err))
        except ModelError as err:  # the interpreter failed: not the client's fault
            log.error("model failure: %s", err)
            return _error(500, str(err))
        except (TypeError, ValueError) as err:  # a key or argument the pool refused
            return _error(400, str(err))

    return handle


def make_app(pool: StreamPool, *, name: str, max_body_bytes: int = MAX_BODY_BYTES, close_pool: bool = True) -> Starlette:
    """The ASGI app serving `pool` under the model name `name`.

    Args:
        pool: the pool to step; its model's metadata describes the API's tensors.
        name: the model name of the TensorFlow-Serving-style paths.
        max_body_bytes: largest request body accepted (413 beyond). Default: 1 MiB.
        close_pool: close the pool (a final flush) when the app shuts down. Default: True.
    """
    if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ValueError(f"`max_body_bytes` must be an int >= 1, got {max_body_bytes!r}.")
    api = _Api(pool, name, max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if close_pool:
            pool.close()
            log.info("flushed and closed the pool")

    def route(path: str, endpoint: Endpoint, method: str) -> Route:
        return Route(path, _answering_errors(pool, endpoint), methods=[method])

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, f"Internal error: {type(exc).__name__}.")

    routes = [  # the busiest first: routes are tried in order
        route("/v1/step", api.step, "POST"),
        route("/v1/health", api.health, "GET"),
        route("/v1/model", api.model, "GET"),
        route("/v1/reset", api.reset, "POST"),
        route("/v1/remove", api.remove, "POST"),
        route("/v1/flush", api.flush, "POST"),
        route("/v1/models/{name}", api.model_status, "GET"),
        route("/v1/models/{name}:predict", api.predict, "POST"),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error, Exception: internal_error})
