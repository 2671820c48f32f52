"""Agreement: Krippendorff's ordinal alpha and leave-one-out annotator agreement, checked by hand."""

import random
from fractions import Fraction

import pytest

from annotation.export.agreement import (
    AlphaAccumulator,
    AnnotatorAgreement,
    alpha_for_items,
    annotator_agreement,
    kendall_tau_b,
    normalised_ranks,
)
from annotation.export.pairs import ItemJudgment


def judge(annotator_id, ranks):
    return ItemJudgment(annotator_id=annotator_id, ranks=ranks)


def reference_alpha(items):
    """A second, independent ordinal alpha: the coincidence-matrix formula in exact fractions.

    Krippendorff (2011): o_ck = sum over units of (ordered coder pairs valued c, k) / (m_u - 1);
    delta²_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)²; alpha = 1 - (n - 1) · Σ o·delta² / Σ n_c·n_k·delta².
    """
    units = {}
    for item_number, judgments in enumerate(items):
        for judgment in judgments:
            ordered = sorted(judgment.ranks.values())
            for response_id, rank in judgment.ranks.items():
                # Mid-rank = mean of the 1-based positions this rank occupies in the sorted list.
                positions = [p + 1 for p, other in enumerate(ordered) if other == rank]
                midrank = Fraction(sum(positions), len(positions))
                units.setdefault((item_number, response_id), []).append((midrank - 1) / (len(ordered) - 1))
    pairable = [values for values in units.values() if len(values) >= 2]
    domain = sorted({value for values in pairable for value in values})
    coincidences = {(c, k): Fraction(0) for c in domain for k in domain}
    for values in pairable:
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    coincidences[c, k] += Fraction(1, len(values) - 1)
    n_value = {c: sum(coincidences[c, k] for k in domain) for c in domain}
    n = sum(n_value.values())

    def delta(c, k):
        low, high = min(c, k), max(c, k)
        between = sum(n_value[g] for g in domain if low <= g <= high)
        return (between - (n_value[c] + n_value[k]) / 2) ** 2

    observed = sum(coincidences[c, k] * delta(c, k) for c in domain for k in domain)
    expected = sum(n_value[c] * n_value[k] * delta(c, k) for c in domain for k in domain)
    return 1 - (n - 1) * observed / expected


def test_normalised_ranks_scale_mid_ranks_to_zero_one():
    assert normalised_ranks({1: 1, 2: 2, 3: 3, 4: 4}) == {1: 0.0, 2: 1 / 3, 3: 2 / 3, 4: 1.0}
    # Two tied best share mid-rank 1.5 -> (1.5 - 1) / 2 = 0.25, whether written 1,1,3 or 1,1,2.
    assert normalised_ranks({1: 1, 2: 1, 3: 3}) == {1: 0.25, 2: 0.25, 3: 1.0}
    assert normalised_ranks({1: 1, 2: 1, 3: 2}) == {1: 0.25, 2: 0.25, 3: 1.0}
    # Middle of 3 and middle of 5 are the same value, so items of different sizes share a scale.
    assert normalised_ranks({1: 1, 2: 2, 3: 3})[2] == normalised_ranks({1: 1, 2: 2, 3: 3, 4: 4, 5: 5})[3] == 0.5


def test_perfect_agreement_is_one():
    items = [
        [judge(a, {1: 1, 2: 2, 3: 3}) for a in (1, 2, 3)],
        [judge(a, {4: 2, 5: 1}) for a in (1, 2)],
    ]
    assert alpha_for_items(items) == 1.0


def test_a_hand_computed_two_coder_case():
    # A ranks 1,2,3 -> values 0, 1/2, 1; B ranks 1,3,2 -> 0, 1, 1/2. Units (response 1..3): (0,0), (1/2,1), (1,1/2).
    # Coincidences, 2 coders so each ordered pair counts 1/(2-1) = 1: o[0,0] = 2, o[1/2,1] = o[1,1/2] = 2.
    # n_0 = n_1/2 = n_1 = 2, n = 6. Ordinal delta²: (0,1/2): (2+2 - (2+2)/2)² = 4; (1/2,1): 4; (0,1): (6-2)² = 16.
    # Observed Σ o·δ² = 2·4 + 2·4 = 16. Expected Σ n_c·n_k·δ² / (n-1) = 2·(4·4 + 4·4 + 4·16) / 5 = 38.4.
    # alpha = 1 - 16 / 38.4 = 1 - 5/12 = 7/12.
    items = [[judge(1, {1: 1, 2: 2, 3: 3}), judge(2, {1: 1, 2: 3, 3: 2})]]
    assert alpha_for_items(items) == pytest.approx(7 / 12, abs=1e-12)
    assert reference_alpha(items) == Fraction(7, 12)


def test_it_matches_the_independent_formula_on_mixed_items():
    # Different item sizes, ties, 1-3 coders per item (the single-coder item pairs with nothing).
    items = [
        [judge(1, {1: 1, 2: 2, 3: 3}), judge(2, {1: 1, 2: 1, 3: 3}), judge(3, {1: 2, 2: 1, 3: 3})],
        [judge(1, {4: 1, 5: 2}), judge(3, {4: 2, 5: 1})],
        [judge(2, {6: 1, 7: 2, 8: 3, 9: 4}), judge(3, {6: 1, 7: 3, 8: 2, 9: 3})],
        [judge(1, {10: 1, 11: 2})],
    ]
    expected = reference_alpha(items)
    assert alpha_for_items(items) == pytest.approx(float(expected), abs=1e-12)
    assert 0 < expected < 1


def test_a_random_campaign_matches_the_independent_formula():
    rng = random.Random(7)
    items = []
    for item in range(40):
        ids = [10 * item + k for k in range(rng.randint(2, 5))]
        items.append([judge(a, {r: rng.randint(1, len(ids)) for r in ids}) for a in range(rng.randint(1, 4))])
    assert alpha_for_items(items) == pytest.approx(float(reference_alpha(items)), abs=1e-12)


@pytest.mark.parametrize(
    "items",
    [
        [],
        [[judge(1, {1: 1, 2: 2})], [judge(2, {3: 2, 4: 1})]],  # one judgment per item: no pairable unit
        [[judge(1, {1: 1, 2: 1}), judge(2, {1: 1, 2: 1})]],  # every value 0.5: nothing varies
    ],
)
def test_alpha_is_none_when_undefined(items):
    assert alpha_for_items(items) is None


def test_it_samples_deterministically_above_the_cell_budget():
    rng = random.Random(3)
    items = []
    for item in range(300):
        ids = [4 * item + k for k in range(4)]
        items.append([judge(a, {r: p + 1 for p, r in enumerate(rng.sample(ids, 4))}) for a in range(3)])
    exact = alpha_for_items(items)
    # 4 values (0, 1/3, 2/3, 1) -> 16 cells per unit; 3,200 cells allow 200 of the 1,200 units.
    sampled = alpha_for_items(items, max_cells=3_200)
    assert sampled == alpha_for_items(items[::-1], max_cells=3_200)
    assert sampled != exact
    assert sampled == pytest.approx(exact, abs=0.05)


def test_merged_accumulators_equal_one_pass_over_all_items():
    first = [[judge(1, {1: 1, 2: 2, 3: 3}), judge(2, {1: 1, 2: 3, 3: 2})]]
    second = [[judge(3, {4: 1, 5: 2}), judge(4, {4: 1, 5: 1})]]
    language_pairs = []
    for items in (first, second):
        accumulator = AlphaAccumulator()
        for judgments in items:
            accumulator.add(judgments)
        language_pairs.append(accumulator)
    campaign = AlphaAccumulator()
    for accumulator in language_pairs:
        campaign.merge(accumulator)
    assert campaign.n_units == 3 + 2
    assert campaign.alpha() == alpha_for_items(first + second) == pytest.approx(float(reference_alpha(first + second)))


def test_kendall_tau_b_by_hand():
    # (1,2) and (1,3) concordant, (2,3) discordant: (2 - 1) / sqrt(3 · 3) = 1/3.
    assert kendall_tau_b([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # x ties its first two: 2 concordant, untied pairs 2 in x and 3 in y -> 2 / sqrt(2 · 3) = 0.8165.
    assert kendall_tau_b([1, 1, 2], [1, 2, 3]) == pytest.approx(0.816496580927726)
    assert kendall_tau_b([3, 2, 1], [1, 2, 3]) == -1.0
    assert kendall_tau_b([1, 1, 1], [1, 2, 3]) is None
    with pytest.raises(ValueError, match="same length"):
        kendall_tau_b([1, 2], [1, 2, 3])


def test_annotator_agreement_leaves_the_annotator_out():
    # Item 1. Net votes (worse - better) for responses 1, 2, 3:
    #   A ranks 1,2,3 -> +2, 0, -2     B ranks 1,3,2 -> +2, -2, 0     C ranks 2,1,3 -> 0, +2, -2
    # A vs B+C = (2, 0, -2): same order as A -> tau 1.
    # B vs A+C = (2, 2, -4): pairs (1,2) tied in the others, (1,3) concordant, (2,3) discordant -> 0 / sqrt(3·2) = 0.
    # C vs A+B = (4, -2, -2): (1,2) discordant, (1,3) concordant, (2,3) tied in the others -> 0.
    # Item 2: A and C agree on 4 over 5 -> tau 1 each.
    # Item 3: D ties everything -> D has no tau, and A's only other is all tied -> no tau for A either.
    # Item 4: E alone -> nothing to compare.
    items = [
        [judge(1, {1: 1, 2: 2, 3: 3}), judge(2, {1: 1, 2: 3, 3: 2}), judge(3, {1: 2, 2: 1, 3: 3})],
        [judge(1, {4: 1, 5: 2}), judge(3, {4: 1, 5: 2})],
        [judge(1, {6: 1, 7: 2}), judge(4, {6: 1, 7: 1})],
        [judge(5, {8: 1, 9: 2})],
    ]
    assert annotator_agreement(items) == {
        1: AnnotatorAgreement(n_items=2, agreement=1.0),
        2: AnnotatorAgreement(n_items=1, agreement=0.0),
        3: AnnotatorAgreement(n_items=2, agreement=0.5),
        4: AnnotatorAgreement(n_items=0, agreement=None),
        5: AnnotatorAgreement(n_items=0, agreement=None),
    }


def test_annotator_agreement_with_a_dissenter():
    # A, B and D rank 1,2,3 (nets +2, 0, -2); C ranks 3,2,1 (nets -2, 0, +2).
    # A vs B+C+D = (2, 0, -2) -> tau 1 (likewise B and D). C vs A+B+D = (6, 0, -6), the reverse of C -> -1.
    forward = {1: 1, 2: 2, 3: 3}
    items = [[judge(1, forward), judge(2, forward), judge(3, {1: 3, 2: 2, 3: 1}), judge(4, forward)]]
    result = annotator_agreement(items)
    assert result[1] == result[2] == result[4] == AnnotatorAgreement(n_items=1, agreement=1.0)
    assert result[3] == AnnotatorAgreement(n_items=1, agreement=-1.0)
