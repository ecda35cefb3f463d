"""Liability per party and the usual outcome of the typical minor-accident situations.

Liability is one of 全部 / 主要 / 同等 / 次要 / 无 per party, and the parties' shares must fit
together: one party 全部 and the others 无; one 主要 and the others 次要 (or 无); or two or more
同等 (the others 无). The situations give the officer a starting point, never a decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LIABILITIES = ("全部", "主要", "同等", "次要", "无")
COMMON_BASIS = "《中华人民共和国道路交通安全法实施条例》第九十一条、《道路交通事故处理程序规定》第六十条"


@dataclass(frozen=True)
class Situation:
    name: str
    basis: str  # the rule the party at fault broke
    at_fault: str  # that party's usual liability; the others get its counterpart


SITUATIONS: dict[str, Situation] = {
    "rear_end": Situation("追尾", "《中华人民共和国道路交通安全法》第四十三条", "全部"),
    "lane_change": Situation("变更车道", "《中华人民共和国道路交通安全法实施条例》第四十四条第二款", "全部"),
    "reversing": Situation("倒车", "《中华人民共和国道路交通安全法实施条例》第五十条", "全部"),
    "door_opening": Situation("开关车门", "《中华人民共和国道路交通安全法实施条例》第六十三条第五项", "全部"),
    "signal_violation": Situation("违反交通信号", "《中华人民共和国道路交通安全法》第三十八条", "全部"),
    "failure_to_yield": Situation("未按规定让行", "《中华人民共和国道路交通安全法实施条例》第五十二条", "全部"),
    "wrong_way": Situation("逆向行驶", "《中华人民共和国道路交通安全法》第三十五条", "全部"),
    "other": Situation("其他", "", "同等"),
}
_COUNTERPART = {"全部": "无", "主要": "次要", "同等": "同等"}


def propose(situation: str, parties: int, at_fault: int) -> tuple[list[str], str]:
    """The usual liabilities (party order) and legal basis when party ``at_fault`` (0-based) is
    the one the situation blames."""
    s = SITUATIONS[situation]
    shares = [_COUNTERPART[s.at_fault]] * parties
    shares[at_fault] = s.at_fault
    if s.at_fault == "同等" and parties > 2:
        shares = ["同等"] * parties
    basis = "、".join(b for b in (s.basis, COMMON_BASIS) if b)
    return shares, basis


def liability_error(shares: Sequence[str]) -> str | None:
    """Why these shares do not fit together, or None."""
    unknown = [s for s in shares if s not in LIABILITIES]
    if unknown:
        return f"unknown liability {unknown[0]!r}; one of {'/'.join(LIABILITIES)}"
    if len(shares) < 2:
        return "a determination needs at least two parties"
    count = {s: shares.count(s) for s in LIABILITIES}
    if count["全部"] == 1 and count["无"] == len(shares) - 1:
        return None
    if count["主要"] == 1 and count["次要"] >= 1 and count["主要"] + count["次要"] + count["无"] == len(shares):
        return None
    if count["同等"] >= 2 and count["同等"] + count["无"] == len(shares):
        return None
    return f"inconsistent liabilities {'/'.join(shares)}: use 全部/无, 主要/次要 or 同等/同等"
