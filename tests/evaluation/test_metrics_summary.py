"""Cross-language summary: mean and parity."""

import math

import pytest

from evaluation.metrics import Summary, summarize


def test_mean_best_and_parity():
    summary = summarize({"sw": 20.0, "ta": 10.0, "en": 40.0})
    # mean = 70 / 3 = 23.333; parity = (20/40 + 10/40 + 40/40) / 3 × 100 = 1.75 / 3 × 100 = 58.333
    assert summary.mean == pytest.approx(23.3333, abs=1e-4)
    assert summary.best_language == "en"
    assert summary.parity == pytest.approx(58.3333, abs=1e-4)


def test_equal_scores_give_parity_100():
    assert summarize({"sw": 35.0, "ta": 35.0}).parity == pytest.approx(100.0)


def test_one_language_has_parity_100():
    assert summarize({"sw": 12.5}) == Summary(mean=12.5, best_language="sw", parity=100.0)


def test_empty_scores():
    assert summarize({}) == Summary(mean=None, best_language=None, parity=None)


def test_all_zero_has_no_parity():
    assert summarize({"yo": 0.0, "am": 0.0}) == Summary(mean=0.0, best_language="am", parity=None)


def test_a_zero_language_still_counts():
    # (0/50 + 50/50) / 2 × 100 = 50
    assert summarize({"qu": 0.0, "es": 50.0}).parity == pytest.approx(50.0)


def test_ties_go_to_the_first_code():
    assert summarize({"ta": 30.0, "sw": 30.0, "ar": 10.0}).best_language == "sw"


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_scores_must_be_finite_and_not_negative(bad):
    with pytest.raises(ValueError, match="'sw'"):
        summarize({"sw": bad, "ta": 10.0})
