"""The FastAPI app: JSON API under /api, the web page at /, the OpenAPI schema at
/openapi.json (no /docs: FastAPI's would load Swagger UI from a CDN)."""

from __future__ import annotations

import hmac
import sqlite3
from collections import Counter
from collections.abc import Iterable
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, get_args, get_origin
from urllib.parse import quote

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .. import __version__, browse
from ..errors import (
    CorruptIndexError,
    EmptyIndexError,
    IndexLockedError,
    IndexMismatchError,
    IndexWriteError,
    IngestError,
    ModelNotFoundError,
    NotFoundError,
    UnknownLanguageError,
    UnknownTopicError,
    XsearchError,
    damaged,
    first_line,
)
from ..search import Filters
from ..texts import without_surrogates
from . import api_models as m
from .bench import latest_bench, png_path
from .hosts import HostCheck
from .service import IndexService, ModelChangedError, health_counts

STATIC = Path(__file__).parent / "static"
MAX_ID = 2**62
# Ids name indexed rows only; they are never turned into file paths.
Id = Annotated[int, PathParam(ge=1, le=MAX_ID)]

# A language or topic the index does not hold is a bad parameter, like a malformed one: 404
# is kept for ids that name nothing.
_STATUS = [(NotFoundError, 404), (UnknownLanguageError, 400), (UnknownTopicError, 400),
           (EmptyIndexError, 503), (CorruptIndexError, 503), (ModelChangedError, 503),
           (ModelNotFoundError, 503),
           # POST /api/index: the --allow-index folder is gone or unreadable (not a bug)
           (IngestError, 503),
           (IndexLockedError, 409), (IndexMismatchError, 500),
           (IndexWriteError, 507)]  # 507 Insufficient Storage: a full disk, mostly


def _status(exc: XsearchError) -> int:
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _known_params(request: Request) -> None:
    """Refuse query parameters the route does not declare (a typo would be ignored)."""
    params = request.scope["route"].dependant.query_params
    accepted = [p.alias for p in params]
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in accepted]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise HTTPException(400, f"unknown parameter{'s' if len(unknown) > 1 else ''} {names}; "
                                 + (f"accepted: {', '.join(accepted)}" if accepted else
                                    "this route takes none (a POST takes a JSON body)"))
    # One value each, but for the lists (lang, topic): a second q was taken, the first dropped.
    for p in params:
        if not _many(p.field_info.annotation) and len(request.query_params.getlist(p.alias)) > 1:
            raise HTTPException(400, f"parameter {p.alias!r} is given more than once")


def _many(annotation: object) -> bool:
    """Whether a parameter's type takes several values (``list[str] | None``)."""
    return get_origin(annotation) is list or any(_many(a) for a in get_args(annotation))


def _filters(languages: list[str] | None, path: str | None, topics: list[str] | None,
             min_score: float | None) -> Filters:
    return Filters(languages=tuple(x for x in languages or () if x), path_glob=path or None,
                   topics=tuple(x for x in topics or () if x), min_score=min_score)


def _validation_message(exc: RequestValidationError, content_type: str = "") -> str:
    """One line for what FastAPI found wrong with a request."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(x) for x in first.get("loc", ())]
    msg = str(first.get("msg", "invalid request"))
    if first.get("type") == "json_invalid":  # loc: ("body", character position)
        at = loc[1] if len(loc) > 1 else "?"
        why = first.get("ctx", {}).get("error", msg)
        return f"the body is not valid JSON (at character {at}): {why}"
    if loc == ["body"]:  # the body as a whole: missing, or not an object
        return ("the body must be a JSON object such as {\"queries\": [\"...\"]}: "
                + ("it is missing" if first.get("type") == "missing" else msg)
                + ("" if "json" in content_type.lower() else
                   f" (it was sent as {content_type or 'no content type'}: send it with "
                   "content-type: application/json)"))
    where = ".".join(x for x in loc if x not in ("query", "body"))
    return f"{where}: {msg}" if where else msg


def _clean_query(q: str) -> str:
    q = without_surrogates(q).strip()
    if not q:
        raise HTTPException(400, "the query is empty")
    if len(q) > m.MAX_QUERY_CHARS:
        raise HTTPException(400, f"the query is longer than {m.MAX_QUERY_CHARS} characters")
    return q


def create_app(index_path: Path, *, bench_dir: Path | None = None, max_batch: int = 32,
               window_ms: float = 0.0, allow_index: Path | None = None,
               token: str | None = None, engine: str | None = None,
               index_options: dict | None = None,
               allowed_hosts: Iterable[str] | None = ()) -> FastAPI:
    """An app serving the index at ``index_path`` (it may not exist yet: 503 until it does).

    ``allow_index`` (with ``token``) enables ``POST /api/index``, an incremental index run of
    that folder; without it the server is read-only. ``max_batch=1`` turns micro-batching off.
    ``engine`` runs e5-small (default: the indexing engine, see ``embedders.resolve_engine``).
    ``index_options``: ``build_index``'s keyword arguments for those runs (the CLI passes what
    ``xsearch index`` would run with: the configuration file's excludes, limits...).
    ``allowed_hosts``: the host names requests may name besides addresses and ``localhost``
    (:mod:`.hosts`, against DNS rebinding); None answers any (a server bound to the network).
    """
    if allow_index is not None and not token:
        raise ValueError("allow_index needs a token")
    service = IndexService(index_path, max_batch=max_batch, window_ms=window_ms,
                           allow_index=allow_index, token=token, engine=engine,
                           index_options=index_options)
    bench_root = Path(bench_dir) if bench_dir else Path("benchmarks/runs")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:  # load the model and the index now rather than on the first query
            await service.run(lambda s: None)
        except XsearchError:
            pass
        yield
        await service.close()

    app = FastAPI(title="xsearch", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Cross-lingual semantic search over one xsearch index. "
                              "Hits have the fields of `xsearch query --json`.")
    app.state.service = service
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=tuple(allowed_hosts))
    errors = {400: {"model": m.ErrorModel}, 404: {"model": m.ErrorModel},
              503: {"model": m.ErrorModel}}
    # Routes that take query parameters refuse ones they do not know; the others (health,
    # stats...) take anything, so a monitor's cache-busting parameter keeps working.
    known = [Depends(_known_params)]

    @app.exception_handler(XsearchError)
    async def _xsearch_error(request: Request, exc: XsearchError) -> JSONResponse:
        return _error(_status(exc), first_line(exc))

    # Starlette's class, not FastAPI's subclass: unknown routes (404), wrong methods (405) and
    # missing static files are raised by Starlette and would answer {"detail": ...}.
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if message == HTTPStatus(exc.status_code).phrase:  # Starlette's bare default
            message += f": {request.method} {quote(request.url.path)}"
        headers = exc.headers
        if exc.status_code == 405:  # Starlette names the methods of the first route only
            allowed = {x for r in app.routes if r.matches(request.scope)[0] != Match.NONE
                       for x in getattr(r, "methods", None) or ()}
            headers = {**(headers or {}), "Allow": ", ".join(sorted(allowed))}
        return _error(exc.status_code, message, headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = first.get("loc", ())
        if len(loc) == 2 and loc[0] == "path" and str(loc[1]).endswith("_id") and \
                first.get("type") == "less_than_equal":
            # An id past any the index gives: none such (it said "Input should be <= 2^62").
            what = str(loc[1])[:-3]
            return _error(404, f"no {what} {first.get('input')} in the index")
        return _error(400, _validation_message(exc, request.headers.get("content-type", "")))

    # A damaged database is no bug: 503 with the one line `xsearch query` prints, logged
    # once, no traceback (it answered 500 and logged one per request).
    @app.exception_handler(sqlite3.DatabaseError)
    async def _database(request: Request, exc: sqlite3.DatabaseError) -> JSONResponse:
        why = (f"SQLite: {first_line(exc)}" if isinstance(exc, sqlite3.OperationalError)
               and "decode" not in str(exc) else damaged(exc, service.index_path))
        service.log_once(why)
        return _error(503, why)

    # Anything else is a bug, but its answer is still JSON (uvicorn logs the traceback).
    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error: {first_line(exc)}")

    # -- search ----------------------------------------------------------------------------

    @app.get("/api/search", response_model=m.SearchResponse, responses=errors, tags=["search"],
             dependencies=known)
    async def search(
        q: Annotated[str, Query(description="the query, in any language (at most "
                                f"{m.MAX_QUERY_CHARS} characters, spaces around it aside)",
                                json_schema_extra={"maxLength": m.MAX_QUERY_CHARS})],
        k: Annotated[int, Query(ge=1, le=m.MAX_K)] = 5,
        lang: Annotated[list[str] | None, Query(
            max_length=m.MAX_FILTER_VALUES, description="language filter (hin_Deva, or hin)")
        ] = None,
        path: Annotated[str | None, Query(max_length=500, description="file glob")] = None,
        topic: Annotated[list[str] | None, Query(max_length=m.MAX_FILTER_VALUES)] = None,
        min_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
        per_doc: Annotated[int, Query(ge=0, le=m.MAX_K)] = 1,
        offset: Annotated[int, Query(ge=0, le=m.MAX_OFFSET,
                                     description="skip this many hits (paging)")] = 0,
        mode: Annotated[m.Mode, Query(description=m.MODE_HELP)] = "hybrid",
    ) -> dict:
        """Ranked passages in every language for one query; page with ``offset``."""
        query = _clean_query(q)
        filters = _filters(lang, path, topic, min_score)
        # One hit more than asked tells whether there is a next page.
        hits = (await service.search([query], k + 1, filters, per_doc, offset, mode))[0]
        page = hits[:k]
        named = await service.run(lambda s: s.filter_languages(filters)) if lang else None
        return {"query": query, "k": k, "offset": offset, "hits": [h.as_dict() for h in page],
                "next_offset": offset + k if len(hits) > k else None,
                "languages": dict(Counter(h.language for h in page)), "lang": named}

    @app.post("/api/search", response_model=m.BatchResponse, responses=errors,
              tags=["search"], dependencies=known)
    async def search_batch(body: m.BatchRequest) -> dict:
        """Several queries at once (one JSON object per query, in order)."""
        queries = [_clean_query(q) for q in body.queries]
        k, offset = body.k, body.offset
        results = await service.search(
            queries, k + 1, _filters(body.languages, body.path, body.topics, body.min_score),
            body.per_doc, offset, body.mode)
        return {"results": [{"query": q, "k": k, "offset": offset,
                             "hits": [h.as_dict() for h in hits[:k]],
                             "next_offset": offset + k if len(hits) > k else None,
                             "languages": dict(Counter(h.language for h in hits[:k]))}
                            for q, hits in zip(queries, results, strict=True)]}

    # -- browse ----------------------------------------------------------------------------

    @app.get("/api/passages/{passage_id}", response_model=m.PassageWithNeighbours,
             responses=errors, tags=["browse"], dependencies=known)
    async def passage(passage_id: Id,
                      neighbours: Annotated[int, Query(ge=0, le=20)] = 2) -> dict:
        """A passage with its neighbouring passages in the same document."""
        return await service.run(lambda s: browse.passage(s.index, passage_id, neighbours))

    @app.get("/api/passages/{passage_id}/translations", response_model=m.TranslationsResponse,
             responses=errors, tags=["browse"], dependencies=known)
    async def translations(passage_id: Id, k: Annotated[int, Query(ge=1, le=10)] = 1) -> dict:
        """This passage in other languages: its nearest passages in each other language."""
        return await service.translations(passage_id, k)

    @app.get("/api/documents/{document_id}", response_model=m.DocumentModel, responses=errors,
             tags=["browse"])
    async def document(document_id: Id) -> dict:
        """A document with its passages in order."""
        return await service.run(lambda s: browse.document(s.index, document_id))

    @app.get("/api/languages", response_model=list[m.LanguageModel], responses=errors,
             tags=["browse"])
    async def languages() -> list:
        """Passage languages with counts (the page's facets)."""
        return await service.run(lambda s: browse.languages(s.index))

    @app.get("/api/labels", response_model=list[m.LabelModel], responses=errors,
             tags=["browse"])
    async def labels() -> list:
        """Topic labels of the index with passage counts."""
        return await service.run(lambda s: browse.labels(s.index))

    @app.get("/api/stats", responses=errors, tags=["browse"])
    async def stats() -> dict:
        """What the index holds: counts per language and label, model, chunking."""
        return {**await service.run(lambda s: browse.summary(s.index)),
                "reloads": service.reloads, "model_changes": service.model_changes,
                "batches": len(service.batcher.batch_sizes),
                "queries_embedded": sum(service.batcher.batch_sizes)}

    @app.get("/api/health", response_model=m.HealthModel, tags=["service"])
    async def health() -> JSONResponse:
        """ok once the index is open; 503 with "starting" while there is no index yet (or it
        holds no passages: searches answer 503 then too), or
        "unavailable" while the index cannot be served (a model this server cannot load, a
        damaged index), with the reason."""
        try:
            passages, bad = await service.run(health_counts)
        except XsearchError as exc:
            info = service.health()
            info.update(status="starting" if isinstance(exc, EmptyIndexError) else "unavailable",
                        message=first_line(exc))
            return JSONResponse(info, status_code=503)
        # Read after the refresh: a model the index changed to is named at once.
        info = {**service.health(), "passages": passages, "status": "ok"}
        if bad:  # answers still, without those passages
            info.update(status="degraded", message=(
                f"{len(bad)} segment(s) unusable (missing or damaged: {bad[0]}); their "
                f"passages are left out of results: run xsearch check --repair --index "
                f"{service.index_path}"))
        return JSONResponse(info)

    @app.head("/api/health", include_in_schema=False)
    async def health_head() -> JSONResponse:  # monitors that ask with HEAD; no body is sent
        return await health()

    # -- bench -----------------------------------------------------------------------------

    @app.get("/api/bench", tags=["bench"], responses=errors, dependencies=known)
    async def bench(
        metric: Annotated[str, Query(pattern=r"^(recall@\d+|mrr@\d+)$")] = "recall@1",
        run: Annotated[str | None, Query(max_length=200, description="a name from runs")] = None,
    ) -> dict:
        """An ``xsearch bench`` run's language-pair matrix (default: the newest run)."""
        found = latest_bench(bench_root, metric, run)
        if found is None:
            raise HTTPException(404, f"no xsearch bench results {run or ''} under {bench_root}")
        if metric not in found["metrics"]:  # (a matrix of nulls, answered 200)
            raise HTTPException(400, f"run {found['run']} has no metric {metric!r}; it has "
                                     + ", ".join(found["metrics"]))
        return found

    @app.get("/api/bench/png/{name}", tags=["bench"], responses=errors, dependencies=known)
    async def bench_png(name: str, run: Annotated[str | None, Query(max_length=200)] = None
                        ) -> FileResponse:
        """A heatmap PNG of a run (only names that run's folder lists)."""
        found = png_path(bench_root, name, run)
        if found is None:
            raise HTTPException(404, f"no heatmap {name!r} in that bench run")
        return FileResponse(found, media_type="image/png")

    # -- writes ----------------------------------------------------------------------------

    if allow_index is not None:
        @app.post("/api/index", tags=["service"],
                  responses={403: {"model": m.ErrorModel}, 409: {"model": m.ErrorModel}})
        async def index_run(request: Request,
                            authorization: Annotated[str | None, Header()] = None) -> dict:
            """Incrementally index the folder given by ``--allow-index`` (Bearer token)."""
            scheme, _, given = (authorization or "").strip().partition(" ")
            given = given.strip() if scheme.lower() == "bearer" else ""  # (any case: RFC 9110)
            if not given or not hmac.compare_digest(given.encode(), (token or "").encode()):
                raise HTTPException(403, "a valid token is needed: Authorization: Bearer TOKEN")
            if request.query_params or (await request.body()).strip() not in (b"", b"{}"):
                # {"path": ...} or ?path= would be ignored: the folder is the server's choice
                raise HTTPException(400, "POST /api/index takes no parameters and no body: it "
                                         f"indexes {allow_index}, the folder the server was "
                                         "started with (--allow-index)")
            return await service.index_now()
    else:
        @app.post("/api/index", tags=["service"], include_in_schema=False)
        async def index_off() -> JSONResponse:
            return _error(403, "this server is read-only (start it with --allow-index ROOT)")

    # -- the page --------------------------------------------------------------------------

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def openapi() -> dict:
        # Every validation error answers 400 {"error": ...} (``_bad_request``), never the 422
        # FastAPI documents for each route.
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app

