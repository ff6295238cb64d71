"""Real document files the knowledge tests write: a Markdown policy, an HTML page, and PDFs made
byte by byte (a text page, a page with no text layer, an encrypted one)."""

from __future__ import annotations

import io

POLICY_MD = """\
# Returns

We accept returns within 30 days of delivery, unused and in the original box.

## Damaged goods

If an item arrives damaged, send us a photo within 7 days and we refund it in full,
shipping included.

# Shipping

Orders ship within two working days from our warehouse in Leeds. Delivery in the UK takes
one to three days.
"""

HOURS_HTML = """\
<!doctype html>
<html><head><title>Shop hours</title><style>h1 { color: red }</style>
<script>var hidden = "never indexed";</script></head>
<body>
<h1>Opening hours</h1>
<p>The shop is open from <b>9 am to 5 pm</b>, Monday to Saturday.</p>
<h2>Bank holidays</h2>
<p>On bank holidays the shop opens at 11 am &amp; closes at 3 pm.</p>
</body></html>
"""


def pdf_bytes(*pages: list[str]) -> bytes:
    """A minimal PDF 1.4 with one page per list of lines, each line drawn in Helvetica. A page
    with no lines has an empty content stream: a page of no text, as a scan is."""
    objects: list[bytes] = []
    count = len(pages)
    kids = " ".join(f"{3 + 2 * n} 0 R" for n in range(count))
    font = 3 + 2 * count
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode())
    for n, lines in enumerate(pages):
        content = _content(lines)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * n} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _content(lines: list[str]) -> bytes:
    if not lines:
        return b""
    parts = ["BT /F1 12 Tf 72 720 Td 16 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        parts.append(f"({escaped}) Tj T*")
    parts.append("ET")
    return "\n".join(parts).encode("latin-1")


def encrypted_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
