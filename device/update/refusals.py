"""Why a unit refused an update, in words a technician can act on (Chinese first).

python-tuf's client raises one exception per attack it stops; each becomes a refusal with a code
the server and the fleet page show and a reason that says what to do.
"""

from __future__ import annotations

from enum import StrEnum

from tuf.api import exceptions as tuf_errors


class Refusal(StrEnum):
    HASH_MISMATCH = "hash_mismatch"
    BAD_SIGNATURE = "bad_signature"
    ROLLBACK = "rollback"
    EXPIRED = "expired"
    TOO_LARGE = "too_large"


REASONS = {
    Refusal.HASH_MISMATCH: "下载的更新文件与签名清单中的长度或校验值不符，已丢弃；请发布站重新发布该版本"
    " (the download does not match its signed hash)",
    Refusal.BAD_SIGNATURE: "更新元数据不是受信任的发布密钥所签，已拒绝；请核对服务器上的发布库是否被替换"
    " (metadata not signed by the trusted keys)",
    Refusal.ROLLBACK: "服务器提供的版本比本机已有的旧（回滚攻击），已拒绝；请发布更新的版本"
    " (rollback: older than what the unit has)",
    Refusal.EXPIRED: "更新元数据已过期（冻结攻击，或发布未续签），已拒绝；请在发布站运行 kuaichu release publish"
    " (expired metadata)",
    Refusal.TOO_LARGE: "更新文件超过本机允许的大小，已拒绝；请检查发布内容或调大 [update] max_download_mb"
    " (download larger than allowed)",
}


class UpdateRefused(Exception):
    """An update the unit will not take: nothing of it was installed."""

    def __init__(self, refusal: Refusal, detail: str = "") -> None:
        self.refusal = refusal
        self.detail = detail
        super().__init__(f"{REASONS[refusal]}: {detail}" if detail else REASONS[refusal])

    @property
    def reason(self) -> str:
        return str(self)


def refusal_for(exc: Exception) -> UpdateRefused | None:
    """The refusal a TUF error stands for; None for what is worth trying again (the network)."""
    match exc:
        case tuf_errors.LengthOrHashMismatchError():
            return UpdateRefused(Refusal.HASH_MISMATCH, str(exc))
        case tuf_errors.UnsignedMetadataError():
            return UpdateRefused(Refusal.BAD_SIGNATURE, str(exc))
        case tuf_errors.BadVersionNumberError():
            return UpdateRefused(Refusal.ROLLBACK, str(exc))
        case tuf_errors.ExpiredMetadataError():
            return UpdateRefused(Refusal.EXPIRED, str(exc))
        case tuf_errors.DownloadLengthMismatchError():
            return UpdateRefused(Refusal.TOO_LARGE, str(exc))
    return None
