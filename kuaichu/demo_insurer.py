"""The demo's simulated insurers (人保 PICC, 平安 PAIC, 太平洋 CPIC), so that a determination issued
in ``kuaichu demo`` reaches an insurer and a party's 一键理赔 can be worked through, as in service.

Each is the insurer's side of docs/insurers.md over real HTTP: it takes the server's events at
``/webhooks`` and checks every signature with the ``standardwebhooks`` library (a page shows ✔ or
✘ for each), and its page's buttons (accept, assign an adjuster, assess, pay, close) call the real
insurers' API with the insurer's API key, which never reaches the browser. It runs in the demo's
own process, like the simulated SMS provider (``kuaichu.demo_sms``).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from runtime.local_http import serving

logger = logging.getLogger(__name__)

API = "/api/insurers/v1"
CREDENTIALS_FILE = "insurers.json"
LABELS = {
    "requested": "待受理",
    "accepted": "已受理",
    "adjuster_assigned": "已派查勘员",
    "assessed": "已定损",
    "paid": "已赔付",
    "closed": "已结案",
}
STYLE = """body{margin:0;font:15px/1.5 "Noto Sans CJK SC",system-ui,sans-serif;background:#f3f4f6;color:#111827}
header{background:#7f1d1d;color:#fff;padding:.6rem 1rem}h1{font-size:1.1rem;margin:0}
main{max-width:48rem;margin:auto;padding:.6rem}
section{background:#fff;border-radius:.5rem;padding:.6rem .9rem;margin:.6rem 0}h2{font-size:1rem;margin:.2rem 0 .5rem}
.item{border-top:1px solid #e5e7eb;padding:.5rem 0}.ok{color:#15803d;font-weight:700}.bad{color:#b91c1c;font-weight:700}
.hint{color:#4b5563;font-size:.85rem}form{display:flex;flex-wrap:wrap;gap:.3rem;margin:.3rem 0}
input{font:inherit;padding:.4rem;border:1px solid #9ca3af;border-radius:.3rem;min-width:0;flex:1 1 7rem}
button{font:inherit;padding:.45rem .8rem;border:0;border-radius:.3rem;background:#0b5cad;color:#fff;flex:0 0 auto}
.msg{color:#0b5cad;font-weight:600}a{color:#0b5cad;word-break:break-all}"""


@dataclass(frozen=True)
class InsurerLogin:
    """What the directory gave the demo for one insurer, shown once and kept in the demo folder."""

    code: str
    name: str
    secret: str  # whsec_...: verifies the server's events
    api_key: str  # calls the insurers' API


def load_logins(folder: Path) -> dict[str, InsurerLogin]:
    path = folder / CREDENTIALS_FILE
    if not path.exists():
        return {}
    return {code: InsurerLogin(**login) for code, login in json.loads(path.read_text()).items()}


def save_logins(folder: Path, logins: dict[str, InsurerLogin]) -> None:
    path = folder / CREDENTIALS_FILE
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps({c: vars(login) for c, login in logins.items()}, ensure_ascii=False, indent=2))


async def register(server_config: Path, folder: Path, endpoints: dict[str, str]) -> dict[str, InsurerLogin]:
    """Put the simulated insurers in the server's directory with API keys on the first run (their
    secrets and keys kept in ``folder``), and point each at this run's port on every run."""
    from sqlalchemy import update

    from server.cases import now_utc
    from server.config import load_server_config
    from server.db.engine import make_engine, make_sessionmaker
    from server.db.insurers import Insurer
    from server.insurers.directory import add_insurer, demo_insurers

    logins = load_logins(folder)
    engine = make_engine(load_server_config(server_config).database_url)
    sessions = make_sessionmaker(engine)
    try:
        for spec in demo_insurers(endpoints):
            if spec.code not in logins:
                made = await add_insurer(sessions, spec, now_utc())
                assert made.api_key is not None
                logins[spec.code] = InsurerLogin(spec.code, spec.name, made.secret, made.api_key)
            async with sessions.begin() as session:
                await session.execute(update(Insurer).where(Insurer.code == spec.code).values(endpoint=spec.endpoint))
    finally:
        await engine.dispose()
    save_logins(folder, logins)
    return logins


@dataclass
class Received:
    webhook_id: str
    type: str
    verified: bool
    at: str
    data: dict[str, Any]


@dataclass
class DemoInsurer:
    login: InsurerLogin
    server_url: str  # the Kuaichu server's base URL
    events: dict[str, Received] = field(default_factory=dict)  # by webhook-id: a resend is one event
    message: str = ""

    def app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.post("/webhooks")
        async def webhook(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            try:
                payload = Webhook(self.login.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                payload, verified = _loose_json(body), False
            webhook_id = headers.get("webhook-id", f"unsigned-{len(self.events)}")
            self.events[webhook_id] = Received(
                webhook_id,
                str(payload.get("type", "?")),
                verified,
                datetime.now(UTC).isoformat(timespec="seconds"),
                payload.get("data") or {},
            )
            logger.info("demo insurer %s: %s %s", self.login.code, payload.get("type"), "ok" if verified else "BAD")
            return Response(status_code=204 if verified else 401)

        @app.get("/", response_class=HTMLResponse)
        async def page() -> str:
            claims, problem = await self._claims()
            return self._page(claims, problem)

        @app.post("/claims/{claim_id}")
        async def act(
            claim_id: int,
            status: str = Form(),
            adjuster_name: str = Form(""),
            adjuster_phone: str = Form(""),
            amount_cny: str = Form(""),
            reason: str = Form(""),
        ) -> RedirectResponse:
            body: dict[str, Any] = {"status": status}
            if status == "adjuster_assigned":
                body["adjuster"] = {"name": adjuster_name.strip(), "phone": adjuster_phone.strip()}
            if status in ("assessed", "paid"):
                body["amount_cny"] = amount_cny.strip() or "0"
            if status == "closed":
                body["reason"] = reason.strip() or "理赔完毕"
            answer = await self._api("POST", f"/claims/{claim_id}/status", body)
            ok = answer.is_success
            detail = "" if ok else answer.json().get("detail", answer.status_code)
            self.message = f"理赔 {claim_id}：{LABELS.get(status, status)} ✔" if ok else f"理赔 {claim_id}：{detail}"
            return RedirectResponse("/", status_code=303)

        return app

    async def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.login.api_key}"}
        async with httpx.AsyncClient(base_url=self.server_url + API, timeout=10, headers=headers) as client:
            return await client.request(method, path, json=body)

    async def _claims(self) -> tuple[list[dict[str, Any]], str]:
        try:
            answer = await self._api("GET", "/claims")
        except httpx.HTTPError as exc:
            return [], f"快处服务器无法连接 ({type(exc).__name__})"
        if not answer.is_success:
            return [], f"快处服务器拒绝了请求：{answer.status_code}"
        return list(answer.json()), ""

    def _page(self, claims: list[dict[str, Any]], problem: str) -> str:
        e = html.escape
        out = [
            f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{e(self.login.name)} · 模拟理赔系统</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{e(self.login.name)}（{e(self.login.code)}）· 模拟理赔系统 <small>demo insurer</small></h1>"
            f"</header><main>"
        ]
        if self.message or problem:
            out.append(f"<p class='msg' id='message'>{e(self.message or problem)}</p>")
        out.append("<section id='claims'><h2>理赔申请 Claims</h2>")
        if not claims:
            out.append("<p class='hint'>暂无理赔申请。当事人在手机上点“一键理赔”后会出现在这里。</p>")
        for claim in reversed(claims):
            out.append(self._claim(claim))
        out.append("</section><section id='events'><h2>收到的推送 Events（验签 ✔/✘）</h2>")
        if not self.events:
            out.append("<p class='hint'>暂无推送。认定书送达当事人后，快处会推送给承保的保险公司。</p>")
        for event in reversed(list(self.events.values())):
            out.append(_event(event))
        out.append("</section></main></body></html>")
        return "".join(out)

    def _claim(self, claim: dict[str, Any]) -> str:
        e = html.escape
        who = claim["claimant"]
        status = claim["status"]
        lines = [
            f"<div class='item' data-claim='{claim['claim_id']}' data-status='{e(status)}'>",
            f"<strong>理赔 {claim['claim_id']} · 案件 {e(claim['case_no'])} · {LABELS.get(status, e(status))}</strong>",
            f"<div>{e(who['position'])}方 {e(who['name'])} · 电话 {e(who['phone'])} · {e(who['plate'] or '')} · "
            f"保单 {e(who['policy_no'] or '')}</div>",
            f"<div class='hint'>方便联系：{e(claim['preferred_contact'] or '随时')}</div>",
        ]
        if claim["adjuster"]:
            lines.append(f"<div>查勘员 {e(claim['adjuster']['name'])} {e(claim['adjuster']['phone'])}</div>")
        if claim["amount_cny"] is not None:
            lines.append(f"<div>金额 {claim['amount_cny']:.2f} 元</div>")
        action = f"/claims/{claim['claim_id']}"
        forms = {
            "requested": [("accepted", "受理", "")],
            "accepted": [("adjuster_assigned", "指派查勘员", _adjuster_inputs()), ("assessed", "远程定损", _amount())],
            "adjuster_assigned": [
                ("assessed", "定损", _amount()),
                ("adjuster_assigned", "改派查勘员", _adjuster_inputs()),
            ],
            "assessed": [("paid", "赔付", _amount())],
            "paid": [("closed", "结案", "<input name='reason' placeholder='结案说明' value='已赔付，结案'>")],
        }.get(status, [])
        for new, label, inputs in forms:
            lines.append(
                f"<form method='post' action='{action}' data-action='{new}'>"
                f"<input type='hidden' name='status' value='{new}'>{inputs}<button>{label}</button></form>"
            )
        if status not in ("paid", "closed"):
            lines.append(
                f"<form method='post' action='{action}' data-action='closed'><input type='hidden' name='status' "
                "value='closed'><input name='reason' placeholder='结案原因（如：不属于保险责任）'>"
                "<button>结案</button></form>"
            )
        return "".join(lines) + "</div>"

    async def serve(self, port: int) -> None:
        """Take events and serve the page on 127.0.0.1:``port`` until cancelled."""
        async with serving(self.app(), port) as running:
            await running


def _adjuster_inputs() -> str:
    return (
        "<input name='adjuster_name' placeholder='查勘员姓名' value='王强' required>"
        "<input name='adjuster_phone' placeholder='手机号' value='13800000000' required>"
    )


def _amount() -> str:
    return "<input name='amount_cny' placeholder='金额（元）' value='3200.00' inputmode='decimal' required>"


def _event(event: Received) -> str:
    e = html.escape
    data = event.data
    mark = "<span class='ok'>✔ 签名有效</span>" if event.verified else "<span class='bad'>✘ 签名无效，已拒收</span>"
    lines = [
        f"<div class='item' data-event='{e(event.type)}' data-verified='{str(event.verified).lower()}'>",
        f"{mark} · <strong>{e(event.type)}</strong> · 案件 {e(str(data.get('case_no', '')))}",
        f"<div class='hint'>{e(event.at)} · webhook-id {e(event.webhook_id)}</div>",
    ]
    accident = data.get("accident") or {}
    if accident:
        lines.append(f"<div>{e(str(accident.get('place', '')))} · {e(str(accident.get('situation_name', '')))}</div>")
    for insured in data.get("insured") or []:
        lines.append(
            f"<div>被保险人 {e(str(insured.get('position')))}方 {e(str(insured.get('name')))} "
            f"{e(str(insured.get('plate')))} · 责任 {e(str(insured.get('liability')))}</div>"
        )
    pdf = (data.get("determination") or {}).get("pdf_url")
    if pdf:
        lines.append(f"<div><a href='{e(pdf)}'>认定书 PDF（限时链接）</a></div>")
    claim = data.get("claim")
    if claim:
        lines.append(f"<div>理赔 {claim.get('claim_id')} · 照片 {len(claim.get('photos') or [])} 张</div>")
    return "".join(lines) + "</div>"


def _loose_json(body: bytes) -> dict[str, Any]:
    """An unverified body, shown as sent so the page can say what was refused."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def start(server_config: Path, folder: Path, server_url: str) -> tuple[list[asyncio.Task[None]], list[str]]:
    """The three simulated insurers registered and listening, each on a free port: their tasks (to
    cancel at the end) and a line per insurer for the demo's banner."""
    from kuaichu.demo import free_port

    ports = {code: free_port() for code in ("PICC", "PAIC", "CPIC")}
    endpoints = {code: f"http://127.0.0.1:{port}/webhooks" for code, port in ports.items()}
    logins = await register(server_config, folder, endpoints)
    tasks = [
        asyncio.create_task(DemoInsurer(logins[code], server_url).serve(port), name=f"insurer-{code}")
        for code, port in ports.items()
    ]
    lines = [f"{code} {logins[code].name}: http://127.0.0.1:{port}/" for code, port in ports.items()]
    return tasks, lines
