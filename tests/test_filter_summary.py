"""`rationalyst filter`'s summary where the `train` extra (matplotlib) is missing: the
summary is written and the command says why there is no histogram, with no traceback."""

from __future__ import annotations

import json
import sys

from rationalyst.making import filter as filt


def test_summary_without_matplotlib_says_so_and_writes_the_rest(tmp_path, monkeypatch, capsys):
    rows = [{"id": f"t{i}", "gain": g} for i, g in enumerate((0.5, -0.2, 1.5))]
    (tmp_path / "kept.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[::2]))
    (tmp_path / "rejected.jsonl").write_text(json.dumps(rows[1]) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    s = filt.write_summary(tmp_path, 0.0, 1.0)
    assert s["scored"] == 3 and s["kept"] == 2
    assert (tmp_path / "filter_summary.md").is_file()
    assert not (tmp_path / "gains.png").exists()
    assert "matplotlib is missing, so no gains.png" in capsys.readouterr().err
