"""Text metrics against values worked out by hand (n-gram counts in the comments) and against the reference tools:
sacrebleu's own tokenizers and signatures, and XL-Sum's multilingual ROUGE scorer (csebuetnlp/xl-sum at afcd803,
multilingual_rouge_scoring) whose outputs for the ROUGE cases below were checked by running it."""

import pytest
from sacrebleu.metrics import BLEU

from evaluation.metrics import (
    accuracy,
    bleu,
    bleu_score,
    bleu_tokenizer_for,
    chrf_pp,
    chrf_pp_score,
    rouge_l,
    rouge_l_score,
    xlsum_language,
    xlsum_tokenize,
)

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


def test_bleu_japanese_by_character_when_asked():
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
        ("ja", "ja-mecab"),
        ("ko", "ko-mecab"),
        ("th", "th-newmm"),
        ("lo", "char"),
        ("km", "char"),
        ("my", "char"),
        ("bo", "char"),
        ("sw", "13a"),
        ("ar", "13a"),
        ("ta", "13a"),
        ("pt-BR", "13a"),
        ("xx", "13a"),
    ],
)
def test_bleu_tokenizer_per_language(language, expected):
    # sacrebleu's recommendation (BLEU._TOKENIZER_MAP: zh, ja-mecab, ko-mecab; 13a otherwise), plus Thai words.
    assert bleu_tokenizer_for(language) == expected


def test_bleu_japanese_uses_mecab_words_not_characters():
    # ja-mecab: 私 は 猫 が 好き です / 私 は 犬 が 好き です. 1-grams 5/6, 2-grams 3/5 (私は, が好き, 好きです),
    # 3-grams 1/4 (が好きです), 4-grams 0/3, which sacrebleu's exp smoothing counts as 1/(2 × 3).
    # BLEU = (5/6 × 3/5 × 1/4 × 1/6)^(1/4) = (1/48)^(1/4) = 0.37992; per character it would read 59.46.
    scored = bleu_score(["私は猫が好きです"], ["私は犬が好きです"], language="ja")
    assert scored.value == pytest.approx(37.992, abs=1e-3)
    assert "tok:ja-mecab-0.996-IPA" in scored.settings["signature"]


def test_bleu_korean_uses_mecab_ko_morphemes():
    # ko-mecab: 저 는 사과 를 좋아합니다 / 저 는 바나나 를 좋아합니다. 1-grams 4/5, 2-grams 2/4,
    # 3-grams 0/3 -> 1/(2 × 3), 4-grams 0/2 -> 1/(4 × 2).
    # BLEU = (4/5 × 1/2 × 1/6 × 1/8)^(1/4) = (1/120)^(1/4) = 0.30214.
    # 13a sees three words ("저는 사과를 좋아합니다") and scores 0.
    scored = bleu_score(["저는 사과를 좋아합니다"], ["저는 바나나를 좋아합니다"], language="ko")
    assert scored.value == pytest.approx(30.214, abs=1e-3)
    assert "tok:ko-mecab-0.996/ko-0.9.2-KO" in scored.settings["signature"]
    assert bleu(["저는 사과를 좋아합니다"], ["저는 바나나를 좋아합니다"], tokenize="13a") == pytest.approx(0.0)


def test_bleu_thai_is_segmented_into_words():
    # newmm: ผม ชอบ กิน ข้าวผัด มาก / ผม ชอบ กิน ข้าวผัด มาก ๆ. Every n-gram of the 5-word hypothesis matches, so BLEU is
    # the brevity penalty exp(1 − 6/5) = 0.81873. 13a sees one word each and scores 0.
    scored = bleu_score(["ผมชอบกินข้าวผัดมาก"], ["ผมชอบกินข้าวผัดมากๆ"], language="th")
    assert scored.value == pytest.approx(81.873, abs=1e-3)
    assert "tok:pythainlp-" in scored.settings["signature"] and "-newmm+13a" in scored.settings["signature"]


def test_bleu_signature_is_sacrebleus():
    scored = bleu_score(["the cat sat on the mat"], ["the cat sat on a mat"], language="en")
    metric = BLEU(tokenize="13a")
    metric.corpus_score(["the cat sat on the mat"], [["the cat sat on a mat"]])
    assert scored.settings["signature"] == str(metric.get_signature())
    assert scored.settings["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


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


def _tiny_spm_model(tmp_path):
    import sentencepiece

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the cat sat on the mat", "paka alikaa kwenye mkeka", "我喜欢吃苹果"] * 50))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "tiny"), vocab_size=40, character_coverage=1.0,
        hard_vocab_limit=False,
    )
    return tmp_path / "tiny.model"


def test_spbleu_with_a_local_model(tmp_path):
    model = _tiny_spm_model(tmp_path)
    score = bleu(["paka alikaa kwenye mkeka"], ["paka alikaa kwenye mkeka"], spm_model_path=model)
    assert score == pytest.approx(100.0)


def test_spbleu_equals_sacrebleus_flores200_with_the_same_model(tmp_path, monkeypatch):
    # sacrebleu's own flores200 tokenizer, given the same model file where it looks for it (so it downloads
    # nothing), must give the same score and the same signature as our local-model spBLEU.
    model = _tiny_spm_model(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "flores200sacrebleuspm").write_bytes(model.read_bytes())
    monkeypatch.setattr("sacrebleu.tokenizers.tokenizer_spm.SACREBLEU_DIR", str(tmp_path))
    hypotheses = ["the cat sat on a mat", "paka alikaa mkeka", "我喜欢吃香蕉"]
    references = ["the cat sat on the mat", "paka alikaa kwenye mkeka", "我喜欢吃苹果"]
    theirs = BLEU(tokenize="flores200")
    expected = theirs.corpus_score(hypotheses, [references]).score
    ours = bleu_score(hypotheses, references, spm_model_path=model)
    assert ours.value == pytest.approx(expected, abs=1e-9)
    assert ours.settings["signature"] == str(theirs.get_signature())
    assert "tok:flores200" in ours.settings["signature"]


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


# --- ROUGE-L (XL-Sum's scorer) --------------------------------------------------------------------------------------
# Expected values: F1 = 2PR / (P + R) over the longest common subsequence of the tokens shown; each was also
# printed by XL-Sum's RougeScorer(["rougeL"], lang=<name>, use_stemmer=True) on the same pair.


def test_rouge_l_of_identical_text_is_100():
    assert rouge_l(["Anga ni la buluu."], ["Anga ni la buluu."], language="sw") == pytest.approx(100.0)


def test_rouge_l_hindi_is_stemmed():
    # लड़क स्कूल जा हैं / लड़क स्कूल जा है (suffixes े/ा, ते/ता stripped): LCS 3 of 4 and 4: F1 = 0.75. Unstemmed: 0.25.
    assert xlsum_tokenize("लड़के स्कूल जाते हैं", "hindi") == ["लड़क", "स्कूल", "जा", "हैं"]
    assert rouge_l(["लड़के स्कूल जाते हैं"], ["लड़का स्कूल जाता है"], language="hi") == pytest.approx(75.0)


def test_rouge_l_arabic_is_stemmed_with_snowball():
    # ذهب اولاد إلى مدارس / ذهب ولد إلى مدرس: the article and the plural go, the stems still differ:
    # LCS 2 of 4: F1 = 0.5.
    assert xlsum_tokenize("ذهب الأولاد إلى المدارس", "arabic") == ["ذهب", "اولاد", "إلى", "مدارس"]
    assert rouge_l(["ذهب الأولاد إلى المدارس"], ["ذهب الولد إلى المدرسة"], language="ar") == pytest.approx(50.0)


def test_rouge_l_english_is_stemmed_and_keeps_stop_words():
    # the cat were run quick / the cat run quick ("were" is on NLTK's stop list, so it stays): P 4/5, R 4/4,
    # F1 = 2 × 0.8 / 1.8 = 0.88889. Without stemming it would be 0.44444.
    assert xlsum_tokenize("The cats were running quickly", "english") == ["the", "cat", "were", "run", "quick"]
    score = rouge_l(["The cats were running quickly"], ["The cat runs quickly"], language="en")
    assert score == pytest.approx(88.889, abs=1e-3)


def test_rouge_l_chinese_is_segmented_into_words_by_jieba():
    # 我 喜欢 吃 苹果 ␠ 也 喜欢 香蕉 (8) / 我 不 喜欢 吃 苹果 ␠ 但 喜欢 香蕉 (9): the comma becomes a space,
    # which jieba keeps as a token, as in XL-Sum. LCS 7: P 7/8, R 7/9, F1 = 14/17 = 0.82353
    # (per character it was 0.86957).
    tokens = xlsum_tokenize("我喜欢吃苹果，也喜欢香蕉。", "chinese")
    assert tokens == ["我", "喜欢", "吃", "苹果", " ", "也", "喜欢", "香蕉"]
    score = rouge_l(["我喜欢吃苹果，也喜欢香蕉。"], ["我不喜欢吃苹果，但喜欢香蕉！"], language="zh-Hans")
    assert score == pytest.approx(82.353, abs=1e-3)


def test_rouge_l_japanese_is_segmented_into_words():
    # 私 は 猫 が 好き です / 私 は 犬 が 好き です: LCS 5 of 6 and 6: F1 = 0.83333 (per character 0.875).
    assert rouge_l(["私は猫が好きです"], ["私は犬が好きです"], language="ja") == pytest.approx(83.333, abs=1e-3)


def test_rouge_l_thai_is_segmented_with_newmm():
    # ผม ชอบ กิน ข้าวผัด ␠ มาก ๆ (7) / ผม ชอบ กินข้าว ␠ มาก (5): LCS ผม ชอบ ␠ มาก = 4: P 4/7, R 4/5, F1 = 2/3.
    score = rouge_l(["ผมชอบกินข้าวผัด มากๆ"], ["ผมชอบกินข้าว มาก"], language="th")
    assert score == pytest.approx(66.667, abs=1e-3)


def test_rouge_l_bengali_is_stemmed():
    # ছেল বই পড় / ছেলে বই পড়ছিল (Rafi Kamal rules): LCS 1 (বই) of 3 and 3: F1 = 1/3.
    assert xlsum_tokenize("ছেলেরা বই পড়ছে", "bengali") == ["ছেল", "বই", "পড়"]
    assert rouge_l(["ছেলেরা বই পড়ছে"], ["ছেলেটি বই পড়ছিল"], language="bn") == pytest.approx(33.333, abs=1e-3)


def test_rouge_l_drops_punctuation_and_format_characters():
    # XL-Sum removes control and format characters: the zero-width non-joiner of می‌خواهم goes, so the two spellings
    # are one token. Punctuation splits and is dropped; digits split from letters (OpenNMT aggressive).
    assert rouge_l(["می\u200cخواهم کتاب بخوانم"], ["میخواهم کتاب بخوانم"], language="fa") == pytest.approx(100.0)
    assert xlsum_tokenize("GPT-4 は 3.5km!", "swahili") == ["gpt", "4", "は", "3", "5", "km"]


def test_rouge_l_language_without_a_stemmer_is_not_stemmed():
    # Swahili has no stemmer in XL-Sum's scorer: anga ni la buluu / anga ni buluu sana: LCS 3 of 4 and 4: F1 = 0.75.
    assert rouge_l(["Anga ni la buluu."], ["Anga ni buluu sana"], language="sw") == pytest.approx(75.0)


def test_rouge_l_is_the_mean_over_pairs():
    # Pairs score 1.0 and 0.75: mean 0.875.
    score = rouge_l(["Anga ni la buluu.", "Anga ni la buluu."], ["Anga ni la buluu.", "Anga ni buluu sana"],
                    language="sw")
    assert score == pytest.approx(87.5)


def test_rouge_l_settings_say_how_it_was_computed():
    settings = rouge_l_score(["我喜欢吃苹果"], ["我喜欢吃苹果"], language="zh-Hans").settings
    assert settings["xlsum_language"] == "chinese"
    assert settings["segmenter"].startswith("jieba ")
    assert rouge_l_score(["a"], ["a"], language="hi").settings["stemmer"] == "XL-Sum's Hindi suffix stripper"


@pytest.mark.parametrize(
    ("code", "name"),
    [("zh-Hant", "chinese"), ("sr-Latn", "serbian_latin"), ("sr", "serbian_cyrillic"), ("pt-BR", "portuguese"),
     ("de", "german"), ("qu", None)],
)
def test_xlsum_language_names(code, name):
    assert xlsum_language(code) == name


def test_chrf_pp_signature_is_stored():
    signature = chrf_pp_score(["the cat"], ["the cap"]).settings["signature"]
    assert signature.startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:2")


# --- accuracy -------------------------------------------------------------------------------------------------------


def test_accuracy():
    # 3 of 4 right
    assert accuracy(["1", "0", "1", "1"], ["1", "0", "0", "1"]) == pytest.approx(75.0)


def test_accuracy_compares_labels_exactly():
    assert accuracy(["Yes"], ["yes"]) == 0.0


def test_accuracy_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
