"""The floor under the matching figures of bench/bench_matching.py on the team's labelled
reports: a change of rules or weights that loses the same child, or joins different ones,
fails here before it reaches the operators."""

from bench.bench_matching import quality


def test_matching_figures_stay_above_the_floor(capsys):
    figures = quality()
    precision, recall = figures["suggest"]
    assert recall >= 0.95, "the same child through another channel must be suggested"
    assert precision >= 0.9
    very_precision, very_recall = figures["very_likely"]
    assert very_precision >= 0.97 and very_recall >= 0.75
    assert figures["blocking_recall"] >= 0.97
    assert figures["cv_recall"] >= 0.9 and figures["cv_precision"] >= 0.9
