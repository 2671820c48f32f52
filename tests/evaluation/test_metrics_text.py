"""Text metrics against values worked out by hand (n-gram counts in the comments)."""

import importlib.util

import pytest
from rouge_score import rouge_scorer

from evaluation.metrics import accuracy, bleu, bleu_tokenizer_for, chrf_pp, rouge_l, rouge_tokenize

MECAB_INSTALLED = importlib.util.find_spec("MeCab") is not None and importlib.util.find_spec("ipadic") is not None


# --- BLEU -----------------------------------------------------------------------------------------------------------


def test_bleu_of_identical_text_is_100():
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)


def test_bleu_partial_match_english():
    # hyp "the cat sat on the mat" / ref "the cat sat on a mat", 6 tokens each, so brevity penalty 1.
    # 1-grams 5/6 ("the" clipped to 1), 2-grams 3/5, 3-grams 2/4, 4-grams 1/3 ("the cat sat on").
    # BLEU = (5/6 × 3/5 × 1/2 × 1/3)^(1/4) = (1/12)^(1/4) = 0.53728
    assert bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(53.728, abs=1e-3)


def test_bleu_arabic_right_to_left():
    # 5 words each, the last differs: 1-grams 4/5, 2-grams 3/4, 3-grams 2/3, 4-grams 1/2.
    # BLEU = (4/5 × 3/4 × 2/3 × 1/2)^(1/4) = (1/5)^(1/4) = 0.66874
    score = bleu(["ذهب الولد إلى المدرسة صباحا"], ["ذهب الولد إلى المدرسة مساء"], language="ar")
    assert score == pytest.approx(66.874, abs=1e-3)


def test_bleu_chinese_is_scored_per_character():
    # 'zh' splits Han characters: 我 喜 欢 吃 苹 果 / 我 喜 欢 吃 香 蕉.
    # 1-grams 4/6, 2-grams 3/5, 3-grams 2/4, 4-grams 1/3 ("我喜欢吃").
    # BLEU = (4/6 × 3/5 × 2/4 × 1/3)^(1/4) = (1/15)^(1/4) = 0.50813
    assert bleu(["我喜欢吃苹果"], ["我喜欢吃香蕉"], language="zh-Hans") == pytest.approx(50.813, abs=1e-3)


def test_bleu_chinese_with_a_word_tokenizer_sees_one_wrong_word():
    # Why the tokenizer matters: '13a' sees each sentence as a single unmatched token.
    assert bleu(["我喜欢吃苹果"], ["我喜欢吃香蕉"], tokenize="13a") == pytest.approx(0.0)


def test_bleu_japanese_by_character():
    # 私 は 猫 が 好 き で す / 私 は 犬 が 好 き で す: 1-grams 7/8, 2-grams 5/7, 3-grams 3/6
    # (が好き, 好きで, きです), 4-grams 2/5 (が好きで, 好きです).
    # BLEU = (7/8 × 5/7 × 1/2 × 2/5)^(1/4) = (1/8)^(1/4) = 0.59460
    assert bleu(["私は猫が好きです"], ["私は犬が好きです"], tokenize="char") == pytest.approx(59.460, abs=1e-3)


def test_bleu_pools_ngram_counts_over_the_corpus():
    # Corpus BLEU is not the mean of sentence BLEUs: an identical pair plus the 53.73 pair above pools to
    # 1-grams 11/12, 2-grams 8/10, 3-grams 6/8, 4-grams 4/6: (11/12 × 4/5 × 3/4 × 2/3)^(1/4) = (11/30)^(1/4) = 0.77816
    score = bleu(
        ["the cat sat on the mat", "the cat sat on the mat"], ["the cat sat on the mat", "the cat sat on a mat"]
    )
    assert score == pytest.approx(77.816, abs=1e-3)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh-Hans", "zh"),
        ("zh-Hant", "zh"),
        ("zh", "zh"),
        ("th", "char"),
        ("lo", "char"),
        ("km", "char"),
        ("my", "char"),
        ("bo", "char"),
        ("ko", "13a"),
        ("sw", "13a"),
        ("ar", "13a"),
        ("ta", "13a"),
        ("pt-BR", "13a"),
        ("xx", "13a"),
    ],
)
def test_bleu_tokenizer_per_language(language, expected):
    assert bleu_tokenizer_for(language) == expected


def test_bleu_tokenizer_for_japanese_depends_on_mecab():
    assert bleu_tokenizer_for("ja") == ("ja-mecab" if MECAB_INSTALLED else "char")


def test_bleu_tokenizer_follows_a_given_script():
    assert bleu_tokenizer_for("shn", script="Mymr") == "char"
    assert bleu_tokenizer_for("sr-Latn") == "13a"


def test_bleu_tokenizer_is_spbleu_only_with_a_local_model(tmp_path):
    assert bleu_tokenizer_for("sw", spm_model_path=tmp_path / "flores200.model") == "flores200"


def test_spbleu_without_a_model_path_refuses_instead_of_downloading(monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("sacrebleu tried to download a SentencePiece model")

    monkeypatch.setattr("sacrebleu.utils.download_file", no_download)
    monkeypatch.setattr("sacrebleu.tokenizers.tokenizer_spm.download_file", no_download)
    with pytest.raises(ValueError, match="spm_model_path"):
        bleu(["a b"], ["a b"], tokenize="flores200")


def test_spbleu_with_a_missing_model_file_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="flores200.model"):
        bleu(["a b"], ["a b"], spm_model_path=tmp_path / "flores200.model")


def test_spm_model_path_with_a_word_tokenizer_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="only used by SentencePiece"):
        bleu(["a b"], ["a b"], tokenize="13a", spm_model_path=tmp_path / "m.model")


def test_spbleu_with_a_local_model(tmp_path):
    sentencepiece = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the cat sat on the mat", "paka alikaa kwenye mkeka", "我喜欢吃苹果"] * 50))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "tiny"), vocab_size=40, character_coverage=1.0
    )
    model = tmp_path / "tiny.model"
    assert bleu(["paka alikaa kwenye mkeka"], ["paka alikaa kwenye mkeka"], spm_model_path=model) == 100.0


def test_unknown_tokenizer_is_named_in_the_error():
    with pytest.raises(ValueError, match="'nope'"):
        bleu(["a"], ["a"], tokenize="nope")


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        bleu(["a", "b"], ["a"])


# --- chrF++ ---------------------------------------------------------------------------------------------------------


def test_chrf_pp_of_identical_text_is_100():
    assert chrf_pp(["Habari ya asubuhi"], ["Habari ya asubuhi"]) == pytest.approx(100.0)


def test_chrf_pp_partial_match():
    # hyp "the cat" / ref "the cap"; character n-grams ignore spaces ("thecat" / "thecap").
    # chars 1..6: 5/6, 4/5, 3/4, 2/3, 1/2, 0/1; words: unigrams 1/2 ("the"), bigrams 0/1.
    # Equal lengths, so precision = recall = mean over the 8 orders = (243/60) / 8 = 0.50625, and F(beta=2) = 0.50625.
    assert chrf_pp(["the cat"], ["the cap"]) == pytest.approx(50.625)


def test_chrf_pp_single_word():
    # "abc" / "abd": chars 2/3, 1/2, 0/1 (orders 4-6 have no n-grams and are left out); word unigram 0/1.
    # precision = recall = (2/3 + 1/2 + 0 + 0) / 4 = 7/24 = 0.29167
    assert chrf_pp(["abc"], ["abd"]) == pytest.approx(29.1667, abs=1e-4)


# --- ROUGE-L --------------------------------------------------------------------------------------------------------


def test_rouge_tokenize_splits_words_and_unspaced_scripts():
    assert rouge_tokenize("GPT-4 は便利です。") == ["gpt", "4", "は", "便", "利", "で", "す"]
    assert rouge_tokenize("ذهب الولد، إلى المدرسة.") == ["ذهب", "الولد", "إلى", "المدرسة"]
    assert rouge_tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # vowel signs and virama stay in the word


def test_rouge_tokenize_keeps_combining_marks_and_joiners():
    # Thai vowel marks are combining characters: they stay with the consonant they sit on.
    assert rouge_tokenize("กินข้าว") == ["กิ", "น", "ข้", "า", "ว"]
    # Persian writes the zero-width non-joiner inside words.
    assert rouge_tokenize("می\u200cخواهم کتاب") == ["می\u200cخواهم", "کتاب"]


def test_rouge_tokenize_folds_case_and_width():
    assert rouge_tokenize("Ｈｅｌｌｏ World") == ["hello", "world"]


def test_rouge_l_of_identical_text_is_100():
    assert rouge_l(["Anga ni la buluu."], ["Anga ni la buluu."]) == pytest.approx(100.0)


def test_rouge_l_arabic():
    # ref ذهب الولد الصغير إلى المدرسة (5 words), hyp الولد ذهب إلى المدرسة (4 words); LCS = 3 (الولد إلى المدرسة).
    # P = 3/4, R = 3/5, F1 = 2PR / (P + R) = 0.9 / 1.35 = 2/3
    score = rouge_l(["الولد ذهب إلى المدرسة"], ["ذهب الولد الصغير إلى المدرسة"])
    assert score == pytest.approx(66.667, abs=1e-3)


def test_rouge_scores_default_tokenizer_would_score_arabic_zero():
    # Why we bring our own tokenizer: rouge-score keeps only [a-z0-9] and sees no tokens at all.
    default = rouge_scorer.RougeScorer(["rougeL"])
    assert default.score("ذهب الولد إلى المدرسة", "ذهب الولد إلى المدرسة")["rougeL"].fmeasure == 0.0


def test_rouge_l_chinese_by_character():
    # ref 我喜欢吃苹果 (6 chars), hyp 我不喜欢吃苹果 (7 chars): LCS = 6. P = 6/7, R = 1, F1 = (12/7) / (13/7) = 12/13
    assert rouge_l(["我不喜欢吃苹果"], ["我喜欢吃苹果"]) == pytest.approx(92.308, abs=1e-3)


def test_rouge_l_japanese_by_character():
    # 私は犬が好きです / 私は猫が好きです: 8 characters each, LCS = 7, P = R = F1 = 7/8
    assert rouge_l(["私は犬が好きです"], ["私は猫が好きです"]) == pytest.approx(87.5)


def test_rouge_l_is_the_mean_over_pairs():
    # (100 + 87.5) / 2
    assert rouge_l(["a b", "私は犬が好きです"], ["a b", "私は猫が好きです"]) == pytest.approx(93.75)


# --- accuracy -------------------------------------------------------------------------------------------------------


def test_accuracy():
    # 3 of 4 right
    assert accuracy(["1", "0", "1", "1"], ["1", "0", "0", "1"]) == pytest.approx(75.0)


def test_accuracy_compares_labels_exactly():
    assert accuracy(["Yes"], ["yes"]) == 0.0


def test_accuracy_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
