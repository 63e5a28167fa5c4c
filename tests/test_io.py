import pandas as pd

from vidsim.io import read_status, read_table, write_table

NAMES = ["plain.mp4", "car\rriage.mp4", "new\nline.mp4", "crlf\r\n.mp4", 'say "hi", twice.mp4',
         "=HYPERLINK(\"http://x\",\"y\").mp4", "+1.mp4", "-2.mp4", "@SUM(A1).mp4", "\tTab.mp4",
         "'quoted'.mp4", "''.mp4", "", "ünïcødé €.mp4", "a,b,c"]


def test_every_name_round_trips_exactly(tmp_path):
    table = pd.DataFrame({"clip": NAMES, "reason": NAMES[::-1], "duration": 1.5, "has_audio": True})
    write_table(table, tmp_path / "t.csv")
    back = read_table(tmp_path / "t.csv")
    assert back["clip"].tolist() == NAMES and back["reason"].tolist() == NAMES[::-1]
    status = read_status(tmp_path / "t.csv")
    assert status["duration"].tolist() == [1.5] * len(NAMES) and status["has_audio"].all()


def test_no_field_starts_like_a_formula(tmp_path):
    """A spreadsheet program opening the CSV sees text, never a formula to run."""
    write_table(pd.DataFrame({"clip": NAMES}), tmp_path / "t.csv")
    raw = (tmp_path / "t.csv").read_text(encoding="utf-8")
    fields = pd.read_csv(tmp_path / "t.csv", keep_default_na=False, dtype=str)["clip"]
    assert not any(f.startswith(("=", "+", "-", "@", "\t", "\r")) for f in fields)
    assert raw.count("\n") > len(NAMES)  # the names' own line breaks are inside quoted fields
