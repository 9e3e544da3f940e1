"""bench/report.py: how a figure meets its goal, how repeats combine, what a line says."""

from __future__ import annotations

from bench.report import Figure, Goal, failed, median_of


def test_a_ratio_figure_is_checked_as_a_percentage_of_its_base():
    fig = Figure("updates/s sqlite", 231.4, "", 440.2, "bare aiogram", Goal(">=", 50, "%"))
    assert round(fig.ratio, 1) == 52.6 and fig.verdict == "PASS"
    assert fig.line().startswith("updates/s sqlite")
    assert "231.4 vs bare aiogram 440.2 = 52.6 %   goal >= 50 %   PASS" in fig.line()
    assert Figure("x", 200.0, "", 440.2, goal=Goal(">=", 50, "%")).verdict == "FAIL"


def test_a_plain_figure_is_checked_on_its_value():
    assert Figure("429", 0, goal=Goal("==", 0)).verdict == "PASS"
    assert Figure("429", 7, goal=Goal("==", 0)).verdict == "FAIL"
    assert Figure("p99", 49.9, "ms", goal=Goal("<", 50, "ms")).verdict == "PASS"
    assert Figure("cpu", 2.1, "ms").verdict == ""  # no goal, no verdict


def test_a_failed_measure_fails_its_goal_and_says_why():
    fig = failed("delivery rate", "only 0 of 5 delivered", Goal(">=", 90, "%"))
    assert fig.verdict == "FAIL"
    assert "FAILED: only 0 of 5 delivered" in fig.line() and fig.line().endswith("FAIL")


def test_repeats_combine_as_medians_and_one_broken_run_fails_the_figure():
    runs = [[Figure("rate", v, base=b, goal=Goal(">=", 50, "%"))] for v, b in ((10, 40), (30, 20), (20, 30))]
    (fig,) = median_of(runs)
    assert (fig.value, fig.base, fig.runs) == (20, 30, [10, 30, 20])
    runs.append([failed("rate", "stalled")])
    (broken,) = median_of(runs)
    assert broken.value is None and broken.error == "stalled" and broken.verdict == "FAIL"


def test_a_crashed_run_fails_every_figure_the_other_runs_made():
    from bench.cli import _fill_failed_runs

    good = [Figure("pace", 1.9, base=2, goal=Goal(">=", 95, "%")), Figure("429", 0, goal=Goal("==", 0))]
    runs = _fill_failed_runs("create", [good, [failed("create", "RuntimeError: stalled")], good])
    figures = {f.name: f for f in median_of(runs)}
    assert set(figures) == {"pace", "429"}
    assert all(f.error == "RuntimeError: stalled" and f.verdict == "FAIL" for f in figures.values())
