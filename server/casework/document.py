"""The 道路交通事故认定书（简易程序） as a PDF: Chinese text in an embedded, subset Noto Serif CJK
with TrueType outlines (so the text is extractable), a QR code to the verification page, and the
placeholder that ``signing`` fills with the unit's signature."""

from __future__ import annotations

import base64
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import qrcode  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.fonts import TTFFont

from server.casework.font import DocumentFont
from server.casework.signing import PLACEHOLDER

REVIEW_NOTICE = (
    "当事人对道路交通事故认定有异议的，可以自本认定书送达之日起三日内，向上一级公安机关交通管理部门提出书面复核申请。"
)


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


def qr_data_url(url: str) -> str:
    """The same QR code as the PDF's, for a page to show (the print view)."""
    return "data:image/png;base64," + base64.b64encode(_qr_png(url).getvalue()).decode()


Line = tuple[float, float, str, str]  # font size, line height, text, align (L/C/R)


def lines_of(data: DocumentData) -> list[Line]:
    """What the document says, line by line: the PDF and the print view lay out the same lines."""
    lines: list[Line] = [
        (18, 10, data.unit_name, "C"),
        (18, 10, "道路交通事故认定书（简易程序）", "C"),
        (10, 6, f"{data.doc_no}  第 {data.version} 版", "C"),
    ]
    if data.correction_reason:
        lines.append((10, 6, f"更正：本版更正前一版本。更正原因：{data.correction_reason}", "L"))
    lines.append((11, 3, "", "L"))
    for label, value in (
        ("案件编号", data.case_no),
        ("事故时间", data.time),
        ("事故地点", data.place),
        ("天气", data.weather),
    ):
        lines.append((11, 7, f"{label}：{value}", "L"))
    for p in data.parties:
        lines.append((11, 7, f"当事人{p.label}（{p.role}）：{p.name}  身份证号：{p.id_number}  电话：{p.phone}", "L"))
        lines.extend((10, 6, f"    {line}", "L") for line in (p.licence, p.vehicle, p.insurance) if line)
    shares = "；".join(f"当事人{p.label}{p.name}负{p.liability}责任" for p in data.parties)
    lines += [
        (11, 7, f"交通事故事实：{data.facts}", "L"),
        (11, 7, f"事故情形：{data.situation}", "L"),
        (11, 7, f"当事人责任：{shares}。", "L"),
        (11, 7, f"依据：{data.legal_basis}", "L"),
        (11, 7, REVIEW_NOTICE, "L"),
        (11, 4, "", "L"),
        (11, 7, f"交通警察：{data.officer}", "L"),
        (11, 7, f"{data.unit_name}（电子签章）", "R"),
        (11, 7, data.issued_on, "R"),
        (8, 4.5, f"核验：扫描二维码或访问 {data.verify_url}", "L"),
    ]
    if data.evidence:
        lines.append((8, 4.5, "本认定所依据的证据（SHA-256）：", "L"))
        lines.extend((8, 4.5, line, "L") for line in data.evidence)
    return lines


def render(data: DocumentData, fonts: DocumentFont) -> bytes:
    """The unsigned PDF, its signature placeholder blank. CPU-bound: call it off the event loop."""
    lines = lines_of(data)
    pdf = FPDF(format="A4")
    title = f"道路交通事故认定书（简易程序）{data.case_no}"
    pdf.set_title(title)
    pdf.set_author(data.unit_name)
    pdf.set_creator("Kuaichu 快处")
    pdf.set_keywords(PLACEHOLDER)
    with tempfile.TemporaryDirectory(prefix="kc-doc-") as scratch:
        text = "".join(line[2] for line in lines) + title
        pdf.add_font("serif", fname=str(fonts.for_text(text, Path(scratch))))
    font = pdf.fonts["serif"]
    if isinstance(font, TTFFont):
        # font.py saved every glyph with its box already: recomputing them all when fpdf2 writes
        # the subset was a third of the document's time, in the officer's wait at 签发.
        font.ttfont.recalcBBoxes = False
    pdf.set_margins(18, 16, 18)
    pdf.add_page()
    pdf.image(_qr_png(data.verify_url), x=170, y=12, w=24)
    for size, height, line, align in lines:
        pdf.set_font("serif", size=size)
        if not line:
            pdf.ln(height)
        elif align == "L":
            pdf.multi_cell(0, height, line, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.cell(0, height, line, align=align, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
