"""The HTTP feature server (starlette + uvicorn): ``featurestore serve``.

* ``GET /health`` -> ``{"status": "ok"}`` (503 with the reason if the online store is unreachable)
* ``POST /feature-vectors`` with ``{"feature_group": "name", "version": 1, "entries": [{...}],
  "features": [...], "on_missing": "none"}`` or ``{"feature_groups": [{"name", "version",
  "features"}, ...], "entries": [...]}`` -> ``{"vectors": [{...}, ...]}``
* ``POST /feature-views/{name}/{version}/vector`` with ``{"entry": {...}}`` -> ``{"vector": {...}}`` or
  ``{"entries": [{...}, ...]}`` -> ``{"vectors": [...]}``: the feature view's serving vectors, its
  transformation functions applied (optional ``"training_dataset_version"``, ``"on_missing"``)

Errors are JSON ``{"error": "..."}``: 400 bad request (also a feature view's transformation function
failing on the input, or not fitted yet), 401 without a valid API key, 403 for a key not allowed on
this feature store, 404 unknown feature group, feature view or key (with ``on_missing="raise"``),
500 otherwise. NaN and infinities are sent as null. With API keys configured
(:mod:`featurestore.server.auth`) every route but ``/health`` needs ``Authorization: Bearer <key>``.
The server never touches Spark.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from featurestore.errors import ConfigError, FeatureStoreError
from featurestore.online.serving import json_value
from featurestore.online.types import OnlineStoreError
from featurestore.server.auth import Authenticator, api_keys_from_config, is_loopback
from featurestore.transformation import TransformationError

if TYPE_CHECKING:
    from featurestore.feature_group import FeatureGroup
    from featurestore.feature_store import FeatureStore
    from featurestore.training import FeatureView

LATEST_TTL = 30.0  # seconds a "latest version" resolution is cached


class BadRequest(Exception):
    """A malformed request body (400)."""


class NotFound(Exception):
    """An unknown feature group or key (404)."""


def create_app(fs: FeatureStore, authenticator: Authenticator | None = None) -> Starlette:
    """The starlette application serving the online store of ``fs``; ``authenticator``: the API keys
    (default: those of ``fs``'s configuration)."""
    auth = authenticator if authenticator is not None else Authenticator(api_keys_from_config(fs.config))
    groups: dict[tuple[str, int | None], tuple[float, FeatureGroup]] = {}
    views: dict[tuple[str, int, int | None], tuple[float, FeatureView]] = {}
    lock = threading.Lock()

    def feature_group(name: Any, version: Any) -> FeatureGroup:
        if not isinstance(name, str) or (version is not None and (not isinstance(version, int)
                                                                  or isinstance(version, bool))):
            raise BadRequest("'feature_group' must be a name and 'version' an integer")
        key = (name, version)
        with lock:
            hit = groups.get(key)
        if hit and (version is not None or time.monotonic() - hit[0] < LATEST_TTL):
            return hit[1]
        try:
            fg = fs.get_feature_group(name, version)
        except FeatureStoreError as exc:
            raise NotFound(str(exc)) from None
        with lock:
            groups[key] = (time.monotonic(), fg)
        return fg

    def lookup(body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        entries = body.get("entries")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BadRequest("'entries' must be a list of objects holding primary-key values")
        if "feature_groups" in body:
            specs = body["feature_groups"]
            if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
                raise BadRequest("'feature_groups' must be a non-empty list of {name, version, features}")
            target = [(feature_group(s.get("name"), s.get("version")), s.get("features")) for s in specs]
        elif "feature_group" in body:
            target = [(feature_group(body["feature_group"], body.get("version")), body.get("features"))]
        else:
            raise BadRequest("name the 'feature_group' (or 'feature_groups') to read")
        for _, features in target:
            if features is not None and (not isinstance(features, list)
                                         or not all(isinstance(f, str) for f in features)):
                raise BadRequest("'features' must be a list of feature names")
        try:
            return fs.get_feature_vectors(target, entries, on_missing=body.get("on_missing", "none"))
        except KeyError as exc:
            raise NotFound(exc.args[0]) from None

    def feature_view(name: str, version_text: str, dataset_version: Any) -> FeatureView:
        if not version_text.isdigit() or (dataset_version is not None and (
                not isinstance(dataset_version, int) or isinstance(dataset_version, bool))):
            raise BadRequest("the feature view's version (in the path) and 'training_dataset_version' must be "
                             "integers")
        key = (name, int(version_text), dataset_version)
        with lock:
            hit = views.get(key)
        # a view serving the latest training dataset is looked up again now and then: a new dataset shows
        if hit and (dataset_version is not None or time.monotonic() - hit[0] < LATEST_TTL):
            return hit[1]
        try:
            fv = fs.get_feature_view(name, int(version_text))
            fv.init_serving(training_dataset_version=dataset_version)
        except FeatureStoreError as exc:
            if "not found" in str(exc):
                raise NotFound(str(exc)) from None
            raise
        with lock:
            views[key] = (time.monotonic(), fv)
        return fv

    def view_lookup(name: str, version: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or ("entry" in body) == ("entries" in body):
            raise BadRequest("the body must be a JSON object with 'entry' (one key) or 'entries' (a list)")
        one = "entry" in body
        entries = [body["entry"]] if one else body["entries"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BadRequest("'entry' must be an object (and 'entries' a list of objects) holding primary-key values")
        fv = feature_view(name, version, body.get("training_dataset_version"))
        try:
            found = fv.get_feature_vectors(entries, as_dict=True, on_missing=body.get("on_missing", "none"))
        except KeyError as exc:
            raise NotFound(exc.args[0]) from None
        found = [json_value(v) for v in found]
        return {"vector": found[0]} if one else {"vectors": found}

    async def respond(request: Request, work: Any, *args: Any) -> JSONResponse:
        decision = auth.check(request.headers.get("authorization"), fs.name)
        if decision.status != 200:
            headers = {"WWW-Authenticate": "Bearer"} if decision.status == 401 else None
            return JSONResponse({"error": decision.reason}, status_code=decision.status, headers=headers)
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": f"the body is not JSON: {exc}"}, status_code=400)
        try:
            found = await run_in_threadpool(work, *args, body)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except OnlineStoreError as exc:
            status = 400 if "expects" in str(exc) or "lacks" in str(exc) or "has no feature" in str(exc) else 500
            return JSONResponse({"error": str(exc)}, status_code=status)
        except TransformationError as exc:  # the view's functions on this input, or a view not yet fitted
            return JSONResponse({"error": str(exc)}, status_code=400)
        except FeatureStoreError as exc:
            return JSONResponse({"error": str(exc)}, status_code=500)
        return JSONResponse(found)

    async def vectors(request: Request) -> JSONResponse:
        return await respond(request, lambda body: {"vectors": [json_value(v) for v in lookup(body)]})

    async def view_vectors(request: Request) -> JSONResponse:
        return await respond(request, view_lookup, request.path_params["name"], request.path_params["version"])

    async def health(_request: Request) -> JSONResponse:
        def ping() -> None:
            with fs.online_server.pool.connection() as conn:
                conn.query("SELECT 1", [])

        try:
            await run_in_threadpool(ping)
        except Exception as exc:  # noqa: BLE001 - any failure makes the server unhealthy
            return JSONResponse({"status": "unavailable", "error": str(exc).splitlines()[0] if str(exc) else
                                 type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "feature_store": fs.name})

    async def not_found(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "not found: use POST /feature-vectors, POST "
                                      "/feature-views/{name}/{version}/vector or GET /health"}, status_code=404)

    async def method_not_allowed(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "method not allowed"}, status_code=405)

    return Starlette(routes=[Route("/feature-vectors", vectors, methods=["POST"]),
                             Route("/feature-views/{name}/{version}/vector", view_vectors, methods=["POST"]),
                             Route("/health", health, methods=["GET"])],
                     exception_handlers={404: not_found, 405: method_not_allowed})


WORKER_ENV = "FEATURE_SERVER_WORKER"  # how a worker process learns its config file and store (not FEATURESTORE_*:
# those are configuration keys)


def serve_options(fs: FeatureStore, host: str, ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                  insecure: bool = False) -> dict[str, Any]:
    """Check how the server is to run before it binds: TLS files (both or neither, existing), and no
    address beyond loopback without API keys unless ``insecure``. Returns uvicorn's TLS options."""
    import os

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ConfigError("TLS needs both --ssl-certfile and --ssl-keyfile")
    for option, path in (("--ssl-certfile", ssl_certfile), ("--ssl-keyfile", ssl_keyfile)):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{option} {path} does not exist")
    if not insecure and not is_loopback(host) and not api_keys_from_config(fs.config):
        raise ConfigError(f"refusing to serve every feature group of '{fs.name}' on {host} without API keys: "
                          "set server.api_key (FEATURESTORE_SERVER_API_KEY) or server.api_keys, bind "
                          "127.0.0.1, or pass --insecure")
    return {"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile} if ssl_certfile else {}


def serve(fs: FeatureStore, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          config_path: str | None = None, ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
          insecure: bool = False) -> None:
    """Run the feature server until interrupted.

    ``workers`` > 1 runs that many server processes on one listening socket (uvicorn's supervisor): one
    Python process serves on one core at a time, so a many-core host wants about one worker per core. Each
    worker opens its own feature store from ``config_path`` (the file ``fs`` was loaded from) and its own
    connection pool of ``online.pool_size``. TLS with ``ssl_certfile`` + ``ssl_keyfile``; an address
    beyond loopback needs API keys unless ``insecure`` (see :func:`serve_options`).
    """
    import os

    import uvicorn

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    tls = serve_options(fs, host, ssl_certfile, ssl_keyfile, insecure)
    # no access log: a request line is no secret, but nothing a client sends is written anywhere
    options = {"host": host, "port": port, "log_level": "warning", "access_log": False, **tls}
    if workers == 1:
        uvicorn.run(create_app(fs), **options)
        return
    os.environ[WORKER_ENV] = json.dumps({"config": config_path, "store": fs.name})
    uvicorn.run("featurestore.server.http:worker_app", factory=True, workers=workers, **options)


def worker_app() -> Starlette:
    """The application of one worker process of ``serve(..., workers=N)``."""
    import os

    from featurestore.config import load_config
    from featurestore.feature_store import FeatureStore

    spec = json.loads(os.environ[WORKER_ENV])
    return create_app(FeatureStore(load_config(spec["config"]), spec["store"]))
