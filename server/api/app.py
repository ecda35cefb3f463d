"""The FastAPI application of one server worker: API routes, live feed and the console pages."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from server.api import (
    auth,
    calls,
    cases,
    casework,
    demo,
    determinations,
    devices,
    fleet_map,
    insurer_events,
    insurers,
    lifecycles,
    plates,
    playback,
    portal,
    portal_call,
    portal_claim,
    portal_report,
    portal_review,
    portal_uploads,
    reference,
    reviews,
    unit_commands,
    updates,
    ws,
)
from server.api.database_down import answer_database_loss
from server.api.headers import SecurityHeaders
from server.api.https import Hsts
from server.api.limits import BodyLimit, upload_routes
from server.api.state import ServerState
from server.api.validation import http_refusal, invalid_request
from server.config import WorkerPart
from server.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Throttled,
    TimedOut,
    Unauthenticated,
    Unavailable,
)

CONSOLE = resources.files("server").joinpath("console")

# The most specific kind in an error's class hierarchy decides its status (TimedOut before Unavailable).
STATUS: dict[type[DomainError], int] = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    Invalid: status.HTTP_422_UNPROCESSABLE_CONTENT,
    Forbidden: status.HTTP_403_FORBIDDEN,
    Unauthenticated: status.HTTP_401_UNAUTHORIZED,
    Throttled: status.HTTP_429_TOO_MANY_REQUESTS,
    Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
    TimedOut: status.HTTP_504_GATEWAY_TIMEOUT,
}


def status_of(exc: DomainError) -> int:
    """A kind not in the table (a new one someone forgot to add) is a conflict rather than a 500:
    the message still reaches the console."""
    return next((STATUS[k] for k in type(exc).__mro__ if k in STATUS), status.HTTP_409_CONFLICT)


async def refused(request: Request, exc: Exception) -> JSONResponse:
    """Every refusal as the console reads it: ``{"detail": message, "code": code}``, and the
    ``field`` it is about where it names one (the contract of ``server/api/validation.py``)."""
    assert isinstance(exc, DomainError)
    body = {"detail": str(exc), "code": exc.code} | ({"field": exc.field} if exc.field else {})
    return JSONResponse(body, status_code=status_of(exc))


def create_insurers_app(state: ServerState) -> FastAPI:
    """What the insurers' mutual-TLS port serves: their API alone (``server.insurers.tls``), refusing
    as it does on the console's port, so an insurer's program reads one error body on either."""
    app = FastAPI(title="Kuaichu insurers' API", version="1", description="docs/insurers.md")
    app.state.kuaichu = state
    app.add_exception_handler(DomainError, refused)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_refusal)
    answer_database_loss(app)
    app.include_router(insurers.router)
    app.add_middleware(insurers.CallLog)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    return app


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(
        title="Kuaichu console API",
        version="1",
        description="Dispatcher queue and operator sessions. Every route but /api/login needs a session cookie.",
    )
    app.state.kuaichu = state
    app.add_exception_handler(DomainError, refused)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_refusal)
    answer_database_loss(app)
    runs = state.cfg.server.runs
    if WorkerPart.CONSOLE in runs:
        console_routes(app, state)
    elif WorkerPart.MEDIA in runs:
        # What reaches the calls (nginx-kuaichu.conf sends these paths here): the consoles' live
        # socket, which carries the call messages, the calls' own routes, the statement that waits
        # on a recording, and a party's phone joining.
        for router in (calls.router, casework.statements, portal_call.router, ws.router):
            app.include_router(router)
    app.add_middleware(BodyLimit, routes=upload_routes(state))
    app.add_middleware(SecurityHeaders)
    if state.cfg.http.tls:
        app.add_middleware(Hsts, max_age_s=state.cfg.http.hsts_max_age_s)
    return app


def console_routes(app: FastAPI, state: ServerState) -> None:
    """The console, the parties' pages, the APIs and every page's files, for [server] runs with console."""
    app.include_router(auth.router)
    app.include_router(cases.router)
    app.include_router(casework.router)
    app.include_router(casework.statements)
    app.include_router(determinations.router)
    app.include_router(devices.router)
    app.include_router(fleet_map.router)
    app.include_router(unit_commands.router)
    app.include_router(updates.router)
    app.include_router(lifecycles.router)
    app.include_router(calls.router)
    app.include_router(playback.router)
    app.include_router(plates.router)
    app.include_router(reference.router)
    app.include_router(reviews.router)
    app.include_router(insurer_events.links)
    app.include_router(insurer_events.admin)
    app.include_router(portal.router)
    app.include_router(portal_review.router)
    app.include_router(portal_report.router)
    app.include_router(portal_uploads.router)
    app.include_router(portal_call.router)
    app.include_router(ws.router)
    app.include_router(portal_claim.router)
    app.include_router(insurers.router)
    app.add_middleware(insurers.CallLog)
    if state.cfg.demo.control_dir is not None:
        app.include_router(demo.router)
    app.mount("/static", StaticFiles(directory=str(CONSOLE)), name="static")
    app.mount("/p/static", StaticFiles(directory=str(portal.PAGES)), name="party-static")
    if state.cfg.updates.repository is not None:
        # The units' signed releases (TUF): anyone may read them, the signatures are what counts.
        # Range requests let a unit resume a download where it was cut off.
        repository = StaticFiles(directory=str(state.cfg.updates.repository), check_dir=False)
        app.mount("/updates", repository, name="updates")

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/console")

    @app.get("/console", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("queue.html")))

    @app.get("/workspace", include_in_schema=False)
    async def workspace_page() -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("workspace.html")))

    @app.get("/case", include_in_schema=False)
    async def case_page(request: Request) -> RedirectResponse:
        """The case page became the workspace; links and bookmarks to it still arrive."""
        return RedirectResponse(f"/workspace?{request.url.query}")

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard_page() -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("dashboard.html")))

    @app.get("/determine", include_in_schema=False)
    async def determine_page() -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("determine.html")))

    @app.get("/verify/{token}", include_in_schema=False)
    async def verify_page(token: str) -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("verify.html")))

    @app.get("/reviews", include_in_schema=False)
    async def reviews_page() -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("reviews.html")))

    @app.get("/insurers", include_in_schema=False)
    async def insurers_page() -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("insurers.html")))

    @app.get("/fleet", include_in_schema=False)
    async def fleet_page() -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("fleet.html")))

    @app.get("/login", include_in_schema=False)
    async def login_page() -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("login.html")))
