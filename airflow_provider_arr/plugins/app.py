"""The operations view's FastAPI app, mounted at ``/arr`` on Airflow's API server.

Routes (every one needs a user: bearer token or the UI's ``_token`` cookie; 401 otherwise)::

    GET  /api/accounts                               the account view, JSON
    GET  /                                           the account view, HTML (the nav entry)
    GET  /api/runs/{dag_id}/{run_id}                 a DAG run's sessions, JSON
    GET  /runs/{dag_id}/{run_id}                     the same, HTML (the DAG-run tab)
    GET  /connections/{conn_id}/sessions/{id}/{stop|extend}   the confirmation page
    POST /connections/{conn_id}/sessions/{id}/{stop|extend}   do it (form field ``confirm`` = the id;
                                                     ``extend_by`` for extend); HTML
    POST /api/connections/{conn_id}/sessions/{id}/{stop|extend}   the same, JSON body, JSON answer
    POST /connections/{conn_id}/test, /api/connections/{conn_id}/test   test a saved connection

Server-rendered HTML (Jinja2, autoescaped), no JavaScript: a POST is a form; it works in the UI's
sandboxed iframe. Nothing of a connection but its id is ever put in a page or an answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# At module level: FastAPI reads the routes' annotations (text, with postponed evaluation) from here.
from fastapi import Request

from airflow_provider_arr.plugins.ops import URL_PREFIX, VIEW_NAME, base_path

TEMPLATES = Path(__file__).parent / "templates"


def build_app() -> Any:
    """The FastAPI app (imports FastAPI, Jinja2 and Airflow's API security only when called)."""
    import jinja2
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool

    from airflow_provider_arr.plugins import actions, gather
    from airflow_provider_arr.plugins.access import Access, current_user, same_site
    from airflow_provider_arr.plugins.views import Links

    pages = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    pages.filters["duration"] = duration
    pages.filters["money"] = money
    CurrentUser = Depends(current_user())
    app = FastAPI(title=f"{VIEW_NAME} operations view", docs_url=None, redoc_url=None, openapi_url=None)

    def links() -> Links:
        return Links(base_path(), URL_PREFIX)

    def html(template: str, status: int = 200, **values: Any) -> HTMLResponse:
        body = pages.get_template(template).render(links=links(), title=VIEW_NAME, **values)
        return HTMLResponse(body, status_code=status)

    def refusal(error: actions.Refused, as_json: bool) -> Any:
        if as_json:
            return JSONResponse({"detail": error.message}, status_code=error.status)
        return html("message.html", error.status, heading="Not done", message=error.message)

    @app.get("/api/accounts")
    async def accounts_json(user: Any = CurrentUser) -> Any:
        return await run_in_threadpool(gather.account_view, Access(user), links())

    @app.get("/", response_class=HTMLResponse)
    async def accounts_page(user: Any = CurrentUser) -> Any:
        view = await run_in_threadpool(gather.account_view, Access(user), links())
        return html("accounts.html", view=view)

    @app.get("/api/runs/{dag_id}/{run_id}")
    async def run_json(dag_id: str, run_id: str, user: Any = CurrentUser) -> Any:
        access = Access(user)
        if not await run_in_threadpool(access.read_runs, dag_id):
            return JSONResponse({"detail": "Forbidden"}, status_code=403)
        view = await run_in_threadpool(gather.run_view, access, links(), dag_id, run_id)
        if view is None:
            return JSONResponse({"detail": f"run_id: DAG {dag_id!r} has no run {run_id!r}"}, status_code=404)
        return view

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    async def run_page(dag_id: str, run_id: str, user: Any = CurrentUser) -> Any:
        access = Access(user)
        if not await run_in_threadpool(access.read_runs, dag_id):
            message = f"You may not read the runs of {dag_id}"
            return html("message.html", 403, heading="Forbidden", message=message)
        view = await run_in_threadpool(gather.run_view, access, links(), dag_id, run_id)
        if view is None:
            return html("message.html", 404, heading="Not found", message=f"DAG {dag_id} has no run {run_id}")
        return html("run.html", view=view)

    @app.get("/connections/{conn_id}/sessions/{session_id}/{action}", response_class=HTMLResponse)
    async def confirm_page(conn_id: str, session_id: str, action: str, user: Any = CurrentUser) -> Any:
        try:
            chosen = await run_in_threadpool(actions.target, Access(user), conn_id, session_id, action)
        except actions.Refused as error:
            return refusal(error, as_json=False)
        return html("confirm.html", action=action, target=chosen.summary())

    async def act(
        request: Request, user: Any, conn_id: str, session_id: str, action: str, as_json: bool
    ) -> Any:
        if not same_site(request.headers):
            return refusal(actions.Refused(403, "Forbidden: a cross-site request"), as_json)
        fields = await _fields(request)
        if fields.get("confirm") != session_id:
            message = f"confirm: must be the session id {session_id!r}, to confirm that this session is meant"
            return refusal(actions.Refused(400, message), as_json)
        access = Access(user)
        try:
            if action == "extend":
                extend_by = fields.get("extend_by")
                done = await run_in_threadpool(actions.extend, access, conn_id, session_id, extend_by)
            else:
                done = await run_in_threadpool(actions.stop_or_refuse, access, conn_id, session_id, action)
        except actions.Refused as error:
            return refusal(error, as_json)
        return done if as_json else html("done.html", done=done)

    async def test(request: Request, user: Any, conn_id: str, as_json: bool) -> Any:
        if not same_site(request.headers):
            return refusal(actions.Refused(403, "Forbidden: a cross-site request"), as_json)
        try:
            done = await run_in_threadpool(actions.test_connection, Access(user), conn_id)
        except actions.Refused as error:
            return refusal(error, as_json)
        return done if as_json else html("tested.html", done=done)

    @app.post("/connections/{conn_id}/test", response_class=HTMLResponse)
    async def test_page(request: Request, conn_id: str, user: Any = CurrentUser) -> Any:
        return await test(request, user, conn_id, as_json=False)

    @app.post("/api/connections/{conn_id}/test")
    async def test_json(request: Request, conn_id: str, user: Any = CurrentUser) -> Any:
        return await test(request, user, conn_id, as_json=True)

    @app.post("/connections/{conn_id}/sessions/{session_id}/{action}", response_class=HTMLResponse)
    async def act_page(
        request: Request, conn_id: str, session_id: str, action: str, user: Any = CurrentUser
    ) -> Any:
        return await act(request, user, conn_id, session_id, action, as_json=False)

    @app.post("/api/connections/{conn_id}/sessions/{session_id}/{action}")
    async def act_json(
        request: Request, conn_id: str, session_id: str, action: str, user: Any = CurrentUser
    ) -> Any:
        return await act(request, user, conn_id, session_id, action, as_json=True)

    return app


async def _fields(request: Any) -> dict[str, Any]:
    """The POST's fields: a form (the pages) or a JSON object (the API); anything else gives none."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            return {}
        return dict(body) if isinstance(body, dict) else {}
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    return {}


def duration(seconds: float | None) -> str:
    """``3725.0`` → ``"1:02:05"``; ``None`` → ``"-"``."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def money(value: float | None) -> str:
    """A cost with two decimals (in the currency of the connection's prices); ``None`` → ``"-"``."""
    return "-" if value is None else f"{value:,.2f}"
