"""The web app raters use: one static page and a small JSON API over the study database.

    GET  /                          the page (static/index.html: plain HTML + JS, no build step)
    GET  /api/study                 questions (label, definition, the "does not apply" answer where there is one),
                                    choices, number of pairs (never the model names: the study is blind)
    GET  /api/next?rater=NAME       the rater's first unfinished pair with the answers already given, and progress
    GET  /api/pairs/{id}?rater=N    one pair (404 if unknown)
    POST /api/votes                 {"pair_id", "rater", "question", "choice"} -> 201, committed before the reply;
                                    404 unknown pair, 409 already answered (votes are final), 422 malformed
                                    (choice "na" only for a question that may not apply: face, hands)
    GET  /images/{id}/{left|right}  the image; its path comes from the database, never from the URL
    a request body over MAX_BODY bytes is refused with 413 before it is read whole

Every request opens its own SQLite connection (cheap, and safe under uvicorn's thread pool).
"""

from __future__ import annotations

import contextlib
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from molebench.errors import InputError
from molebench.study import db

MAX_BODY = 16 * 1024  # a vote is ~100 bytes; a bigger body is a mistake or an attack, never read into memory
RaterName = Query(..., min_length=1, max_length=db.MAX_RATER_NAME, description="rater name")


class VoteIn(BaseModel):
    """One answer: unknown fields are refused so a typo cannot pass silently."""

    model_config = ConfigDict(extra="forbid")

    pair_id: int = Field(..., ge=1, strict=True)
    rater: str = Field(..., min_length=1, max_length=db.MAX_RATER_NAME)
    question: Literal[tuple(db.QUESTIONS)]  # type: ignore[valid-type]
    choice: Literal[db.CHOICES]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _applies(self) -> "VoteIn":
        if self.choice == db.NA and self.question not in db.NOT_APPLICABLE:
            raise ValueError(f"question '{self.question}' always applies: answer left, right or tie")
        return self


def create_app(db_path: str | Path) -> FastAPI:
    """The app over one study database (checked here, so a bad file fails before the address is announced)."""
    study = Study(Path(db_path))
    app = FastAPI(title="molebench preference study", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    app.add_exception_handler(RequestValidationError, malformed)
    add_page_routes(app, study)
    add_pair_routes(app, study)
    add_image_route(app, study)
    return app


class Study:
    """What the routes share: the database path (each request opens its own connection), the runs and pair count."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        with contextlib.closing(db.connect(db_path)) as con:
            self.runs = db.read_runs(con)
            self.n_pairs = db.count_pairs(con)

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        con = db.connect(self.db_path)
        try:
            yield con
        finally:
            con.close()

    def pair(self, con: sqlite3.Connection, pair_id: int) -> sqlite3.Row:
        try:
            return db.get_pair(con, pair_id)
        except db.UnknownPairError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None


def rater_name(name: str) -> str:
    try:
        return db.clean_rater_name(name)
    except InputError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


def pair_json(con: sqlite3.Connection, pair: sqlite3.Row, rater: str | None) -> dict[str, Any]:
    """A pair as the page sees it: prompt and image URLs, never which run is on which side (the study is blind)."""
    return {"id": pair["id"], "prompt": pair["prompt"],
            "left": f"/images/{pair['id']}/left", "right": f"/images/{pair['id']}/right",
            "answers": db.answers(con, pair["id"], rater) if rater else {}}


def add_page_routes(app: FastAPI, study: Study) -> None:
    """GET / (the page) and GET /api/study (questions, choices, number of pairs)."""
    page = resources.files("molebench.study").joinpath("static", "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/api/study")
    def questions() -> dict[str, Any]:
        with study.connection() as con:
            meta = db.read_meta(con)
        labels = meta.get("questions", db.QUESTIONS)
        definitions = meta.get("definitions", db.DEFINITIONS)
        not_applicable = meta.get("not_applicable", db.NOT_APPLICABLE)
        return {"questions": [{"id": k, "label": v, "definition": definitions.get(k, ""),
                               "not_applicable": not_applicable.get(k)} for k, v in labels.items()],
                "choices": list(db.CHOICES), "n_pairs": study.n_pairs}


def add_pair_routes(app: FastAPI, study: Study) -> None:
    """GET /api/next, GET /api/pairs/{id} and POST /api/votes."""

    @app.get("/api/next")
    def next_pair(rater: str = RaterName) -> dict[str, Any]:
        rater = rater_name(rater)
        with study.connection() as con:
            pair = db.next_pair(con, rater)
            return {"done": pair is None, "pair": None if pair is None else pair_json(con, pair, rater),
                    "progress": db.progress(con, rater)}

    @app.get("/api/pairs/{pair_id}")
    def get_pair(pair_id: int, rater: str | None = Query(None, max_length=db.MAX_RATER_NAME)) -> dict[str, Any]:
        with study.connection() as con:
            pair = study.pair(con, pair_id)
            return pair_json(con, pair, rater_name(rater) if rater is not None else None)

    @app.post("/api/votes", status_code=201)
    def vote(body: VoteIn) -> dict[str, Any]:
        rater = rater_name(body.rater)
        with study.connection() as con:
            try:
                saved = db.add_vote(con, body.pair_id, rater, body.question, body.choice)
            except db.UnknownPairError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from None
            except db.DuplicateVoteError as exc:
                return JSONResponse(status_code=409, content={"detail": str(exc), "existing": exc.existing})
            return {"vote": saved, "progress": db.progress(con, rater)}


def add_image_route(app: FastAPI, study: Study) -> None:
    """GET /images/{id}/{left|right}: the image's path comes from the database, never from the URL."""

    @app.get("/images/{pair_id}/{side}")
    def image(pair_id: int, side: Literal["left", "right"]) -> FileResponse:
        with study.connection() as con:
            pair = study.pair(con, pair_id)
        side_a, side_b = db.pair_sides(pair)
        shown_left = pair["left_side"]
        run_side = shown_left if side == "left" else (side_b if shown_left == side_a else side_a)
        root = Path(study.runs[run_side].path).resolve()
        path = (root / pair["image_a" if run_side == side_a else "image_b"]).resolve()
        # The relative path comes from the run's items.parquet; still refuse anything that leaves the run folder.
        if not path.is_relative_to(root) or path.suffix.lower() != ".png":
            raise HTTPException(status_code=404, detail=f"image of pair {pair_id} lies outside its run folder")
        if not path.is_file():
            raise HTTPException(status_code=404, detail=f"image file {path} of pair {pair_id} is missing")
        return FileResponse(path, media_type="image/png")


async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field without echoing its value: a value such as NaN or 1e400 (Python's JSON reader
    accepts them) cannot be written back as JSON and would turn a bad request into a server error."""
    detail = [{"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", "")),
               "type": str(error.get("type", ""))} for error in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": detail})


class BodyLimit:
    """ASGI middleware: answer 413 to a request whose body exceeds `limit` bytes (declared or as it streams in)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            await _too_large(scope, receive, send, self.limit)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # a body longer than it declared (or chunked): stop reading it
                raise HTTPException(status_code=413, detail=f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


async def _too_large(scope: dict, receive: Any, send: Any, limit: int) -> None:
    response = JSONResponse(status_code=413, content={"detail": f"request body over {limit} bytes"})
    await response(scope, receive, send)


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
