"""Machine checks of candidates: language and script, off-target, empty, truncated, exact and near duplicates."""

from __future__ import annotations

import pytest

from generation.checks import NEAR_DUPLICATE, Candidate, check_candidates, jaccard, normalise, shingles

SW = "Mji mkuu wa Kenya ni Nairobi. Ni mji mkubwa wenye watu wengi na biashara nyingi."
EN = "The capital of Kenya is Nairobi. It is a large city with many people and businesses."
TA = "கென்யாவின் தலைநகரம் நைரோபி. இது பல மக்கள் வாழும் ஒரு பெரிய நகரம்."
TA_LATIN = "Kenyavin thalainagaram Nairobi. Idhu pala makkal vazhum oru periya nagaram."
HI = "केन्या की राजधानी नैरोबी है। यह एक बड़ा शहर है जहाँ बहुत लोग रहते हैं।"
PARAGRAPH = ("Nairobi is the capital and largest city of Kenya. The city lies in the south-central part of the "
             "country, in the Nairobi River Basin, at an elevation of about 1,795 metres. It was founded in 1899 as "
             "a rail depot on the Uganda Railway and became the capital of Kenya in 1907.")


def candidate(text: str, sample: int = 0, *, generator: str = "g", truncated: bool = False) -> Candidate:
    return Candidate(generator=generator, sample=sample, text=text, new_tokens=len(text.split()), truncated=truncated)


def check_one(text: str, expected: str, **kwargs):
    return check_candidates([candidate(text, **kwargs)], expected_language=expected)[0]


@pytest.mark.parametrize(("text", "expected", "language", "script"), [
    (SW, "sw", "sw", "Latn"), (TA, "ta", "ta", "Taml"), (HI, "hi", "hi", "Deva")])
def test_right_language(text, expected, language, script):
    checked = check_one(text, expected)
    assert (checked.detected_language, checked.detected_script, checked.off_target) == (language, script, False)
    assert checked.detected_confidence > 0.9
    assert not checked.empty and checked.duplicate_of is None and checked.usable


def test_wrong_language_same_script():
    checked = check_one(EN, "sw")
    assert (checked.detected_language, checked.detected_script, checked.off_target) == ("en", "Latn", True)


def test_other_script_is_off_target():
    checked = check_one(TA_LATIN, "ta")
    assert checked.off_target is True and checked.detected_script == "Latn"
    assert check_one(HI, "sw").off_target is True


def test_too_short_to_measure():
    checked = check_one("OK", "sw")
    assert checked.off_target is None
    assert (checked.detected_language, checked.detected_confidence) == (None, None)


@pytest.mark.parametrize("text", ["", "   \n\t", "\u200b\u200d \ufeff"])
def test_empty(text):
    checked = check_one(text, "sw")
    assert checked.empty and not checked.usable
    assert checked.off_target is None and checked.detected_language is None


def test_truncated_is_passed_on():
    assert check_one(SW, "sw", truncated=True).truncated
    assert not check_one(SW, "sw").truncated


def test_exact_duplicates_merge_into_the_first_whatever_the_case_and_spacing():
    variants = [SW, "  " + SW.upper().replace(" ", "   ") + "\n", TA, SW]
    checked = check_candidates([candidate(text, n) for n, text in enumerate(variants)], expected_language="sw")
    assert [c.duplicate_of for c in checked] == [None, 0, None, 0]
    assert [c.usable for c in checked] == [True, False, True, False]


def test_near_duplicate_one_word_changed_in_a_paragraph_merges():
    changed = PARAGRAPH.replace("largest", "biggest")
    checked = check_candidates([candidate(PARAGRAPH, generator="a"), candidate(changed, generator="b")],
                               expected_language="en")
    assert checked[1].duplicate_of == 0


def test_one_word_changed_in_a_short_answer_stays_apart():
    # The word that changed is the answer: annotators should rank these two.
    checked = check_candidates([candidate("The capital of Kenya is Nairobi."),
                                candidate("The capital of Kenya is Mombasa.", 1)], expected_language="en")
    assert [c.duplicate_of for c in checked] == [None, None]


def test_a_long_shared_opening_that_then_differs_does_not_merge():
    opening = PARAGRAPH[:150]  # half of each text
    first = opening + " Today it is known for its national park, where lions and giraffes live in sight of town."
    second = opening + " Its economy rests on finance, trade and technology, and many agencies have offices there."
    assert jaccard(shingles(normalise(first)), shingles(normalise(second))) < NEAR_DUPLICATE
    checked = check_candidates([candidate(first), candidate(second, 1)], expected_language="en")
    assert [c.duplicate_of for c in checked] == [None, None]


def test_empty_candidates_do_not_merge_and_duplicates_point_at_a_kept_one():
    texts = ["", "", PARAGRAPH, PARAGRAPH.replace("largest", "biggest"), PARAGRAPH.replace("1907", "1908")]
    checked = check_candidates([candidate(text, n) for n, text in enumerate(texts)], expected_language="en")
    assert [c.duplicate_of for c in checked] == [None, None, None, 2, 2]
    assert [c.empty for c in checked] == [True, True, False, False, False]


def test_near_duplicates_in_another_script():
    thai = ("กรุงเทพมหานครเป็นเมืองหลวงและเมืองที่มีประชากรมากที่สุดของประเทศไทย ตั้งอยู่บนที่ราบลุ่มแม่น้ำเจ้าพระยา "
            "เป็นศูนย์กลางการปกครอง การศึกษา การคมนาคมขนส่ง การเงินการธนาคาร การพาณิชย์ การสื่อสาร และความเจริญของประเทศ")
    changed = thai.replace("การศึกษา", "การศึกษาา")
    checked = check_candidates([candidate(thai), candidate(changed, 1)], expected_language="th")
    assert checked[1].duplicate_of == 0
    assert checked[0].detected_script == "Thai" and checked[0].off_target is False
