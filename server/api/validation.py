"""Requests the schema refuses, in words for the person at the console or on their phone.

FastAPI's own answer to a malformed request is a list of pydantic errors ("String should match
pattern '^(1[3-9]\\d{9}|…'"): right for a program, useless to a dispatcher with a party on the
line. Every such refusal is turned into the console's contract instead::

    {"detail": "<the first problem, a Chinese sentence saying what to do (the English)>",
     "code": "<its code>", "field": "<its field, dotted: liabilities.0.liability>" | null,
     "errors": [{"field": ..., "code": ..., "message": ...}, ...]}

A field's problem reads with the field's Chinese name ("手机号应为11位数字，以1开头") and never
with a pattern or the field's key. A validator of ours raises ``PydanticCustomError(code,
message)`` with its own words (a model-wide rule names the fields it is about in the context's
``fields``); for pydantic's built-in constraints the words
are written here, per field where the constraint needs explaining (a pattern), per kind of
constraint otherwise. Codes are stable: pages and tests may rely on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic_core.core_schema import ErrorType
from starlette import status
from starlette.exceptions import HTTPException

BUILT_IN = frozenset(get_args(ErrorType))

# What a person calls each field of the console's and the parties' forms.
LABELS = {
    "role": "当事人类别",
    "name": "姓名",
    "id_number": "身份证号",
    "phone": "手机号",
    "licence_no": "驾驶证号",
    "plate": "车牌号",
    "plate_read_source": "车牌识别记录",
    "plate_read_id": "车牌识别记录",
    "vehicle_type": "车辆类型",
    "insurer": "保险公司",
    "policy_no": "交强险保单号",
    "injury": "伤情",
    "vehicles_movable": "车辆能否移动",
    "suspected_impairment": "是否疑似酒驾、毒驾",
    "hazardous_goods": "是否载有危险物品",
    "hit_and_run": "是否肇事逃逸",
    "facts_disputed": "各方对基本事实是否有争议",
    "owner_present": "财产所有人是否在场",
    "place": "事故地点",
    "weather": "天气",
    "party_id": "当事人",
    "start": "陈述开始时间",
    "end": "陈述结束时间",
    "summary": "陈述摘要",
    "reason": "原因",
    "reason_code": "转现场处理的原因",
    "situation": "事故情形",
    "at_fault": "过错方",
    "parties": "当事人人数",
    "liabilities": "责任划分",
    "liability": "责任",
    "position": "当事人",
    "facts": "事故事实",
    "legal_basis": "法律依据",
    "correction_reason": "更正原因",
    "username": "用户名",
    "password": "密码",
    "text": "内容",
    "token": "链接",
    "case_no": "案件编号",
    "code": "验证码",
    "lat": "位置",
    "lon": "位置",
    "accuracy": "定位精度",
    "kind": "类别",
    "size": "文件大小",
    "sha256": "文件校验值",
    "request": "复核请求",
    "reasons": "复核理由",
    "days": "天数",
    "unit": "单位",
    "status": "状态",
}

# Where the same key means something else on another form.
LABELS_BY_PATH = {
    "/api/portal/photos": {"name": "文件名", "kind": "文件类型"},
    "/api/plates/": {"text": "车牌号"},
    "/api/updates/": {
        "percent": "推送比例",
        "district": "区县代码",
        "devices": "设备编号",
        "release": "版本号",
        "kind": "发布类型",
        "max_rollback_pct": "回退上限",
        "batch": "每批台数",
    },
}

# The constraints a kind-of-constraint sentence cannot explain: (field, pydantic type) -> (code, words).
SPECIFIC: dict[tuple[str, str], tuple[str, str]] = {
    ("phone", "string_pattern_mismatch"): (
        "invalid_phone",
        "手机号应为11位数字，以1开头；座机请带区号，如0871-12345678 "
        "(a mobile number is 11 digits starting with 1; a landline starts with its area code)",
    ),
    ("licence_no", "string_pattern_mismatch"): (
        "invalid_licence_no",
        "驾驶证号应为12到18位数字或大写字母，一般与身份证号相同 "
        "(a licence number is 12 to 18 digits or capital letters, usually the ID number)",
    ),
    ("policy_no", "string_pattern_mismatch"): (
        "invalid_policy_no",
        "保单号应为6到40位数字、大写字母或短横线，请照保单抄写 "
        "(a policy number is 6 to 40 digits, capital letters or hyphens, as on the policy)",
    ),
    ("case_no", "string_pattern_mismatch"): (
        "invalid_case_no",
        "案件编号应为短信中的一串数字，请照短信填写 (the case number is the digits in the SMS)",
    ),
    ("code", "string_pattern_mismatch"): (
        "invalid_code",
        "验证码是短信里的6位数字 (the code is the 6 digits in the SMS)",
    ),
    ("facts", "string_too_short"): (
        "facts_too_short",
        "事故事实至少写{min_length}个字：时间、地点、各方车辆和经过 "
        "(write at least {min_length} characters: time, place, the vehicles and what happened)",
    ),
}


def _kind_sentence(kind: str, label: str, ctx: dict[str, Any]) -> tuple[str, str]:
    """(code, words) for a built-in constraint on a field called ``label``."""
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return "required", f"请填写{label} (this is required)"
    if kind == "string_too_short":
        return "too_short", f"{label}至少{ctx['min_length']}个字 (at least {ctx['min_length']} characters)"
    if kind == "string_too_long":
        return "too_long", f"{label}最多{ctx['max_length']}个字，请精简 (at most {ctx['max_length']} characters)"
    if kind == "too_short":
        return "too_few", f"{label}至少{ctx['min_length']}项 (at least {ctx['min_length']})"
    if kind == "too_long":
        return "too_many", f"{label}最多{ctx['max_length']}项 (at most {ctx['max_length']})"
    if kind == "string_pattern_mismatch":
        return "bad_format", f"{label}的格式不对，请核对后重填 (not in the expected form)"
    if kind in ("literal_error", "enum"):
        return "not_a_choice", f"请从列表中选择{label} (choose one of the list)"
    if kind.startswith("bool"):
        return "not_a_choice", f"请选择{label}：是或否 (yes or no)"
    if kind.startswith(("int", "float", "decimal")):
        return "not_a_number", f"{label}应为数字 (a number)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "out_of_range", f"{label}超出允许的范围 (out of range)"
    if kind.startswith(("datetime", "timezone", "date")):
        return "bad_time", f"{label}不是有效的时间，请重新标记 (not a valid time)"
    if kind == "extra_forbidden":
        return "unexpected", "页面发送了服务器不认识的内容，请刷新页面后重试 (unexpected field; reload the page)"
    if kind == "json_invalid":
        return "bad_request", "请求格式有误，请刷新页面后重试 (malformed request; reload the page)"
    return "invalid", f"{label}填写有误，请核对 (invalid)"


@dataclass(frozen=True)
class Problem:
    field: str | None
    code: str
    message: str

    def json(self) -> dict[str, Any]:
        return {"field": self.field, "code": self.code, "message": self.message}


def _label(field: str | None, path: str) -> str:
    leaf = field.rsplit(".", 1)[-1] if field else None
    for prefix, labels in LABELS_BY_PATH.items():
        if path.startswith(prefix) and leaf in labels:
            return labels[leaf]
    return LABELS.get(leaf or "", "这一项")


def problems(error: dict[str, Any], path: str) -> list[Problem]:
    """One pydantic error as the console's problems (a model-wide rule may name several fields)."""
    names = [str(part) for part in error["loc"][1:]]  # the first is body, query, path or header
    field = ".".join(names) or None
    kind, ctx = error["type"], error.get("ctx") or {}
    if error["loc"][0] == "path":
        # A number in the address (a case's, a file's) came from a page's link: one that is not a
        # record's (too large, not a number) names nothing there is.
        return [Problem(field, "bad_path", "地址中的编号有误，请回到列表重新打开 (no such record in the address)")]
    if kind not in BUILT_IN:  # our own words, from a PydanticCustomError
        named = ctx.get("fields") or [field]
        return [Problem(name, kind, error["msg"]) for name in named]
    leaf = names[-1] if names else ""
    if (leaf, kind) in SPECIFIC:
        code, words = SPECIFIC[(leaf, kind)]
        return [Problem(field, code, words.format(**ctx))]
    code, words = _kind_sentence(kind, _label(field, path), ctx)
    return [Problem(field, code, words)]


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """The handler for ``RequestValidationError``: the console's contract, status 422 as before."""
    assert isinstance(exc, RequestValidationError)
    found = [p for error in exc.errors() for p in problems(dict(error), request.url.path)]
    first = found[0] if found else Problem(None, "invalid", "请求有误，请刷新页面后重试 (invalid request)")
    body = {"detail": first.message, "code": first.code, "field": first.field, "errors": [p.json() for p in found]}
    return JSONResponse(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


# Starlette's own refusals (no such route, wrong method, a body too large) in the same words.
HTTP_WORDS = {
    404: ("not_found", "没有这个页面或接口，请检查地址 (not found)"),
    405: ("method_not_allowed", "不支持这种请求方式，请刷新页面后重试 (method not allowed)"),
    413: ("too_large", "文件过大 (too large)"),
}


async def http_refusal(request: Request, exc: Exception) -> Response:
    """A route's own words are kept; Starlette's English stock phrases are replaced."""
    assert isinstance(exc, HTTPException)
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=exc.headers)
    code, words = HTTP_WORDS.get(exc.status_code, ("refused", "请求未能完成，请稍后再试 (refused)"))
    ours = isinstance(exc.detail, str) and any("\u4e00" <= ch <= "\u9fff" for ch in exc.detail)
    body = {"detail": exc.detail if ours else words, "code": code}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
