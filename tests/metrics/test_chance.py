"""The random-box baseline's command line (its numbers are checked on real crYOLO results in
tests/adapters/test_cryolo_real.py; its functions by their doctests)."""


def test_chance_baseline_without_results_is_one_line_exit_2(tmp_path, capsys):
    from lipobench.metrics.chance import _main as chance

    assert chance([str(tmp_path / "nothing")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "nothing: no results.parquet" in captured.err
