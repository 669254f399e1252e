"""Threshold rules: parsing, Youden, fixed sensitivity/specificity, unmeetable rules."""

import numpy as np
import pytest

from thyronet.metrics import binary_summary, choose_threshold, parse_threshold_rule


def test_rules_parse_with_their_cohort():
    assert parse_threshold_rule("youden") == ("youden", None, "validation")
    assert parse_threshold_rule("youden:train") == ("youden", None, "train")
    assert parse_threshold_rule("Sensitivity:0.9") == ("sensitivity", 0.9, "validation")
    assert parse_threshold_rule("specificity:0.8:train") == ("specificity", 0.8, "train")
    assert parse_threshold_rule(0.25) == ("fixed", 0.25, None)
    for bad in ("median", "sensitivity", "sensitivity:1.5", "youden:test", 1.0, True, None):
        with pytest.raises(ValueError, match="threshold"):
            parse_threshold_rule(bad)


def test_fixed_sensitivity_and_specificity_reach_their_target_at_the_best_cut_off():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = y + rng.normal(0, 1, 400)
    for target in (0.8, 0.9, 0.95):
        chosen = choose_threshold(y, s, f"sensitivity:{target}")
        summary = binary_summary(y, s, chosen.threshold)
        assert summary.sensitivity.estimate >= target
        assert chosen.sensitivity == pytest.approx(summary.sensitivity.estimate)
        # the next higher observed score would miss the target
        higher = np.min(s[s > chosen.threshold])
        assert binary_summary(y, s, higher).sensitivity.estimate < target
        chosen = choose_threshold(y, s, f"specificity:{target}")
        summary = binary_summary(y, s, chosen.threshold)
        assert summary.specificity.estimate >= target
        lower = np.max(s[s < chosen.threshold])
        assert binary_summary(y, s, lower).specificity.estimate < target
    assert "sensitivity >= 0.90" in choose_threshold(y, s, "sensitivity:0.9").source


def test_youden_and_fixed_rules():
    y, s = [0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.3]
    assert choose_threshold(y, s, "youden").threshold == 0.3
    assert choose_threshold(y, s, 0.42).threshold == 0.42
    assert choose_threshold(y, s, 0.42).source == "fixed probability 0.42"


def test_a_rule_met_only_by_a_trivial_cut_off_is_refused():
    # the lowest-scored positive ties with the lowest negatives (bf16-like ties at 0)
    y = [0, 0, 1, 0, 1, 1]
    s = [0.0, 0.0, 0.0, 0.5, 0.7, 0.9]
    with pytest.raises(ValueError, match="calling every patient positive"):
        choose_threshold(y, s, "sensitivity:1.0")
    assert choose_threshold(y, s, "sensitivity:0.6").threshold == 0.7
    y = [0, 1, 1, 0, 1, 0]
    s = [0.1, 0.2, 0.3, 1.0, 1.0, 1.0]  # the top score is tied between both classes
    with pytest.raises(ValueError, match="calling no patient positive"):
        choose_threshold(y, s, "specificity:1.0")
