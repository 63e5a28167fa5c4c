import logging

from vidsim.progress import progress


def test_without_a_terminal_progress_is_a_few_log_lines(caplog, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    with caplog.at_level(logging.INFO, logger="vidsim.progress"):
        assert list(progress(range(1000), desc="featurize", unit="clip")) == list(range(1000))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10  # 10%, 20%, ... 90%, then the total
    assert lines[0].startswith("featurize: 100/1000 clip (10%") and lines[-1].startswith("featurize: 1000 clip in")


def test_a_generator_without_length_logs_its_total(caplog, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    with caplog.at_level(logging.INFO, logger="vidsim.progress"):
        assert sum(progress((i for i in range(5)), desc="x")) == 10
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == ["x: 5 it"]
