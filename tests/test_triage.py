"""First-pass triage of free text, on the center's own sample intakes."""

import json
from pathlib import Path

import pytest
from opencc_purepy import OpenCC

from workflows.triage import classify

SAMPLES = [json.loads(line) for line in
           (Path(__file__).parent / "data" / "intakes.jsonl").read_text().splitlines() if line]
TO_TRADITIONAL = OpenCC("s2t")


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["text"][:12])
def test_samples_get_their_categories_and_danger(sample):
    result = classify(sample["text"])
    assert set(sample["categories"]) <= set(result.categories)
    assert result.emergency is sample["emergency"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["text"][:12])
def test_traditional_characters_classify_the_same(sample):
    traditional = TO_TRADITIONAL.convert(sample["text"])
    assert classify(traditional) == classify(sample["text"])


def test_nothing_recognised_is_other_and_not_urgent():
    for text in ("", "   ", "请问你们几点下班"):
        result = classify(text)
        assert result.categories == ["other"] and result.emergency is False


def test_a_negated_danger_is_not_an_emergency():
    assert classify("孩子被打了，现在没有危险，已经在奶奶家").emergency is False
    assert classify("孩子被打了，现在还在打").emergency is True


def test_markup_and_huge_texts_are_just_text():
    assert classify("<script>alert('家暴')</script>").categories == ["domestic_violence"]
    assert classify("辍学" + "啊" * 200_000).categories == ["dropout"]
