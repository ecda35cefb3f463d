"""The 道路交通事故认定书（简易程序） as a PDF: Chinese text in an embedded, subset Noto Serif CJK
(so the text is extractable), a QR code to the verification page, and the placeholder that
``signing`` fills with the unit's signature."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import qrcode  # type: ignore[import-untyped]
from fpdf import FPDF

from server.casework.signing import PLACEHOLDER

FONT = Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")
FONT_SC = 2  # the collection's Simplified Chinese face
REVIEW_NOTICE = (
    "当事人对道路交通事故认定有异议的，可以自本认定书送达之日起三日内，向上一级公安机关交通管理部门提出书面复核申请。"
)


class DocumentError(Exception):
    pass


@dataclass(frozen=True)
class PartyLine:
    label: str
    role: str
    name: str
    id_number: str
    phone: str
    licence: str
    vehicle: str
    insurance: str
    liability: str


@dataclass(frozen=True)
class DocumentData:
    doc_no: str
    case_no: str
    version: int
    correction_reason: str | None
    time: str
    place: str
    weather: str
    parties: list[PartyLine]
    facts: str
    situation: str
    legal_basis: str
    unit_name: str
    officer: str
    issued_on: str
    verify_url: str
    evidence: list[str]  # one line per evidence file: kind, time, SHA-256


def _qr_png(url: str) -> io.BytesIO:
    image = qrcode.make(url, box_size=4, border=2)
    out = io.BytesIO()
    image.save(out)
    out.seek(0)
    return out


def render(data: DocumentData) -> bytes:
    """The unsigned PDF, its signature placeholder blank. CPU-bound: call it off the event loop."""
    if not FONT.exists():
        raise DocumentError(f"{FONT} missing: install.sh installs fonts-noto-cjk")
    pdf = FPDF(format="A4")
    pdf.set_title(f"道路交通事故认定书（简易程序）{data.case_no}")
    pdf.set_author(data.unit_name)
    pdf.set_creator("Kuaichu 快处")
    pdf.set_keywords(PLACEHOLDER)
    pdf.add_font("serif", fname=str(FONT), collection_font_number=FONT_SC)
    pdf.set_margins(18, 16, 18)
    pdf.add_page()
    pdf.set_font("serif", size=18)
    pdf.cell(0, 10, data.unit_name, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 10, "道路交通事故认定书（简易程序）", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("serif", size=10)
    pdf.cell(0, 6, f"{data.doc_no}  第 {data.version} 版", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.image(_qr_png(data.verify_url), x=170, y=12, w=24)
    if data.correction_reason:
        pdf.multi_cell(
            0, 6, f"更正：本版更正前一版本。更正原因：{data.correction_reason}", new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(2)
    pdf.set_font("serif", size=11)
    for label, value in (
        ("案件编号", data.case_no),
        ("事故时间", data.time),
        ("事故地点", data.place),
        ("天气", data.weather),
    ):
        pdf.multi_cell(0, 7, f"{label}：{value}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    for p in data.parties:
        pdf.set_font("serif", size=11)
        pdf.multi_cell(
            0,
            7,
            f"当事人{p.label}（{p.role}）：{p.name}  身份证号：{p.id_number}  电话：{p.phone}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_font("serif", size=10)
        for line in (p.licence, p.vehicle, p.insurance):
            if line:
                pdf.multi_cell(0, 6, f"    {line}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.set_font("serif", size=11)
    pdf.multi_cell(0, 7, f"交通事故事实：{data.facts}", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 7, f"事故情形：{data.situation}", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(
        0,
        7,
        "当事人责任：" + "；".join(f"当事人{p.label}{p.name}负{p.liability}责任" for p in data.parties) + "。",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.multi_cell(0, 7, f"依据：{data.legal_basis}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.multi_cell(0, 7, REVIEW_NOTICE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.cell(0, 7, f"交通警察：{data.officer}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 7, f"{data.unit_name}（电子签章）", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 7, data.issued_on, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("serif", size=8)
    pdf.multi_cell(0, 4.5, f"核验：扫描二维码或访问 {data.verify_url}", new_x="LMARGIN", new_y="NEXT")
    if data.evidence:
        pdf.multi_cell(0, 4.5, "本认定所依据的证据（SHA-256）：", new_x="LMARGIN", new_y="NEXT")
        for line in data.evidence:
            pdf.multi_cell(0, 4.5, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
