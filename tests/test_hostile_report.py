"""Issue 17, class 2: no markup from a value reaches the report HTML (merged into test_hostile.py)."""

from __future__ import annotations

import re

import pandas as pd

from semcathode.report.index import write_index
from semcathode.report.outputs import NotebookOutputs

XSS_NAME = "<img src=x onerror=alert(1)>frame_0001.png"
XSS_SESSION = "<script>alert('session')</script>"


def test_index_html_escapes_every_table_value_and_text(tmp_path):
    out = NotebookOutputs(tmp_path, "01_data")
    table = pd.DataFrame({"path": [f"NCM333_pristine/{XSS_NAME}"], "session": [XSS_SESSION],
                          "note": ["[click](javascript:alert(2))\n| forged | row |"],
                          "<b>col</b>": [1]})
    out.table(table, "files", "Files", section="Summary")
    out.text("Summary", f"Odd file: {XSS_NAME}")
    out.save()
    md, page = write_index(tmp_path, notebooks=[("01_data", "Dataset")])
    html = page.read_text()
    for raw in ("<img src=x", "<script>", "<b>col</b>", "javascript:alert(2)\"", 'href="javascript'):
        assert raw not in html, raw
    assert "&lt;img src=x onerror=alert(1)&gt;frame_0001.png" in html  # shown as text
    assert "&lt;script&gt;" in html
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows and not any(re.search(r"(?<!\\)[<>]", r) for r in rows)  # every < > escaped in the markdown too
    # the newline in a value did not start a table row of its own
    assert not any(line.startswith("| forged") for line in text.splitlines())
