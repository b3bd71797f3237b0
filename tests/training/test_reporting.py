"""Reporting: the metrics log and its torn lines, the progress bar and curves (textrnn.training.reporting)."""






def test_a_torn_last_line_of_the_metrics_log_is_dropped_with_a_note(tmp_path, capsys):
    from textrnn.training.reporting import MetricsLog

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 4, "loss": 1.5}\n{"step": 8, "loss": 1.2}\n{"step": 12, "lo', encoding="utf-8")  # a crash
    MetricsLog(path).forget_after(8)
    assert path.read_text().splitlines() == ['{"step": 4, "loss": 1.5}', '{"step": 8, "loss": 1.2}']
    assert "torn last line" in capsys.readouterr().err
