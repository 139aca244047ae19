"""First-pass triage of free text, on the center's own sample intakes (tests/data, a copy
of the shared samples) and on the same texts in Traditional characters."""

import json
from pathlib import Path

import pytest
from opencc_purepy import OpenCC

from workflows.config import load
from workflows.triage import MAX_TEXT, classify

SAMPLES = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "data" / "intakes.jsonl").read_text().splitlines()
    if line.strip()
]
S2T = OpenCC("s2t")


def sample_id(sample: dict) -> str:
    return sample["text"][:12]


@pytest.mark.parametrize("sample", SAMPLES, ids=sample_id)
def test_samples_get_their_categories_and_danger(sample):
    result = classify(sample["text"])
    assert set(sample["categories"]) <= set(result.categories), result
    assert result.emergency is sample["emergency"], result


@pytest.mark.parametrize("sample", SAMPLES, ids=sample_id)
def test_traditional_characters_classify_the_same(sample):
    traditional = S2T.s2t(sample["text"])
    assert classify(traditional) == classify(sample["text"])


def test_traditional_text_that_differs_from_simplified_is_understood():
    result = classify("我朋友說她不想活了，已經寫好遺書，她才15歲")
    assert result.categories == ["mental_crisis"] and result.emergency
    assert classify("班上同學被霸淩").categories == ["bullying"]


def test_keywords_are_written_in_simplified_so_converted_text_can_match_them():
    config = load("triage")
    words = [w for ws in config["categories"].values() for w in ws]
    words += config["danger"]["keywords"] + config["danger"]["harmless"]
    t2s = OpenCC("t2s")
    assert [w for w in words if t2s.t2s(w) != w] == []


def test_categories_come_best_first_and_matched_lists_what_fired():
    result = classify("孩子辍学在家，还经常逃学去网吧，父母打骂")
    assert result.categories == ["dropout", "domestic_violence"]
    assert result.matched == ["辍学", "逃学", "打骂"]
    assert result.emergency is False


def test_nothing_recognised_is_other_and_not_urgent():
    for text in ("", "   \n\t", "请问你们几点下班"):
        result = classify(text)
        assert result.categories == ["other"] and result.emergency is False
        assert result.matched == []


def test_a_harmless_phrase_cancels_only_itself():
    assert classify("孩子被打了，现在没有危险，已经在奶奶家").emergency is False
    assert classify("情况不紧急，想咨询一下").emergency is False
    assert classify("孩子被打了，现在还在打").emergency is True
    assert classify("邻居持刀，不过孩子说没有危险").emergency is True
    assert classify("孩子有危险，快来").emergency is True


def test_markup_and_huge_texts_are_just_text():
    assert classify("<script>alert('家暴')</script>").categories == ["domestic_violence"]
    assert classify("<p>孩子<b>辍学</b>了</p>").categories == ["dropout"]
    huge = classify("辍学" + "啊，" * 500_000)
    assert huge.categories == ["dropout"]
    # Only the first MAX_TEXT characters are read.
    assert classify("啊" * MAX_TEXT + "辍学").categories == ["other"]
