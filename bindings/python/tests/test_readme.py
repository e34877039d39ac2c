"""The README's example runs as written (with the store in a temporary folder)."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_example_runs(tmp_path, capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "no python example in the README"
    code = blocks[0].replace("/var/spool/mta/pipeconnect.store", str(tmp_path / "store"))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "early pipelining to 192.0.2.1:25/cleartext" in out
