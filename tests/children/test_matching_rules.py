"""The matching rules on their own: each normalization, each signal and its reason, keys."""

from datetime import UTC, datetime, timedelta

import pytest

from workflows.matching import Profile, keys, score, thresholds
from workflows.matching.keys import plain_keys, query_keys
from workflows.matching.normalize import (
    age_range,
    chinese_number,
    clean_name,
    normalize_address,
    pinyin,
    place_in_text,
    place_tokens,
)
from workflows.matching.score import signals

NOW = datetime(2026, 11, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("幸福里小区3栋", "幸福里三号楼"),
        ("幸福里3幢", "幸福里小区三栋附近"),
        ("李家村三组", "李家村3队"),
        ("李家村十二组", "李家村12小组"),
        ("光明路８８号门口", "光明路88号"),
        ("幸福里 3栋（2单元）", "幸福里3栋2单元"),
    ],
)
def test_addresses_written_differently_normalize_alike(a, b):
    assert normalize_address(a) == normalize_address(b)


def test_numerals_and_the_words_dropped():
    assert chinese_number("三") == 3 and chinese_number("十二") == 12
    assert chinese_number("二十三") == 23 and chinese_number("一百零五") == 105
    assert normalize_address("三里屯附近") == "三里屯"  # 三 not followed by a unit stays
    assert place_tokens("东湖区幸福里小区3栋2单元") == ("幸福里", "幸福里3栋")
    assert place_in_text("今天在幸福里小区3栋楼下看到孩子被打") == "幸福里小区3栋"
    assert place_in_text("有个孩子被打") is None


def test_names_pinyin_and_unknown_names():
    assert pinyin("王晓明") == "wang xiao ming"
    assert clean_name("王 小明") == "王小明"
    for unknown in ("不详", "未知", "小男孩", "某某", "王某", ""):
        assert clean_name(unknown) == ""


def test_vague_ages_become_spans():
    assert age_range(9) == (9, 9)
    assert age_range(None, "一个十来岁的男孩") == (9, 12)
    assert age_range(None, "七八岁的样子") == (7, 8)
    assert age_range(None, "孩子大概8岁") == (8, 8)
    assert age_range(None, "没说年龄") is None


def _p(**kw) -> Profile:
    base = {"at": NOW}
    base.update(kw)
    if "phones" in base:
        base["phones"] = frozenset(base["phones"])
    if "categories" in base:
        base["categories"] = frozenset(base["categories"])
    return Profile(**base)


@pytest.mark.parametrize(
    ("a", "b", "signal", "reason"),
    [
        ("王小明", "王小明", "name_same", "姓名相同"),
        ("王小明", "王晓明", "name_sound", "姓名同音"),
        ("刘娜", "刘拉", "name_sound", "姓名同音"),  # l/n as many callers say them
        ("王小明", "王小红", "name_one_off", "姓名仅差一字"),
        ("王小明", "王小敏", "name_one_off", "姓名仅差一字"),
        ("张子涵", "张紫晗", "name_sound", "姓名同音"),
        ("李明", "王芳", "name_differs", None),
    ],
)
def test_name_signals_and_their_reasons(a, b, signal, reason):
    match = score(_p(name=a), _p(name=b))
    assert signal in match.signals
    if reason:
        assert reason in match.reasons


def test_each_other_signal():
    def held(a: Profile, b: Profile) -> list[str]:
        return signals(a, b)

    assert "age_match" in held(_p(age=9), _p(age=10))
    assert "age_differs" in held(_p(age=5), _p(age=12))
    # A year and more later the child is older: 9 then, 10 now is the same child.
    assert "age_match" in held(_p(age=9, at=NOW - timedelta(days=400)), _p(age=10))
    assert "age_match" in held(_p(age=11), _p(text="一个十来岁的男孩"))
    assert "gender_differs" in held(_p(gender="male"), _p(gender="female"))
    assert "address_same" in held(_p(address="幸福里小区3栋"), _p(address="幸福里三号楼"))
    assert "address_near" in held(_p(address="幸福里3栋"), _p(address="幸福里3栋2单元"))
    assert "place_same" in held(_p(address="幸福里5栋"), _p(address="幸福里小区"))
    assert "address_differs" in held(_p(address="光明路88号"), _p(address="石门村2组"))
    assert "jurisdiction_same" in held(
        _p(jurisdiction="990102001"), _p(jurisdiction="990102001001")
    )
    assert "jurisdiction_differs" in held(_p(jurisdiction="990102"), _p(jurisdiction="990104"))
    # The city itself says nothing about where.
    assert not {"jurisdiction_same", "jurisdiction_differs"} & set(
        held(_p(jurisdiction="990100"), _p(jurisdiction="990104"))
    )
    assert "phone_same" in held(_p(phones=["+8613800138000"]), _p(phones=["+8613800138000"]))
    assert "time_near" in held(_p(), _p(at=NOW - timedelta(days=3)))
    assert "time_near" not in held(_p(), _p(at=NOW - timedelta(days=60)))
    assert "category_same" in held(_p(categories=["bullying"]), _p(categories=["bullying"]))
    story = "放学后几个高年级学生在校门口围住他勒索零花钱还打他"
    assert "story_similar" in held(_p(text=story), _p(text="几个高年级学生在校门口勒索他零花钱"))
    assert "story_similar" not in held(_p(text=story), _p(text="家里没人做饭，孩子饿了两天"))
    assert "id_same" in held(_p(id_index="x"), _p(id_index="x"))


def test_the_same_child_scores_above_and_a_namesake_elsewhere_below_the_threshold():
    suggest = thresholds().suggest
    teacher = _p(name="王小明", age=9, gender="male", address="幸福里小区3栋",
                 jurisdiction="990102001001", categories=["domestic_violence"])
    neighbour = _p(name="王晓明", age=10, address="湖东区幸福里三号楼", jurisdiction="990102001",
                   categories=["domestic_violence"], at=NOW - timedelta(days=20))
    namesake = _p(name="王小明", age=9, gender="male", address="石门村3组",
                  jurisdiction="990104001001", categories=["left_behind"])
    same = score(teacher, neighbour)
    assert same.score >= thresholds().very_likely
    assert same.reasons[:2] == ("姓名同音", "地址相同")
    assert score(teacher, namesake).score < suggest


def test_an_unnamed_child_matches_on_place_time_and_story():
    sms = _p(text="幸福里小区3栋楼下有个十来岁的男孩被一个男的打，哭得很厉害",
             address=place_in_text("幸福里小区3栋楼下有个十来岁的男孩被一个男的打"),
             jurisdiction="990102001001", categories=["domestic_violence"])
    call = _p(text="报警人称幸福里3栋楼下一名男子殴打男孩，男孩哭得厉害", address="幸福里3栋",
              jurisdiction="990102001001", categories=["domestic_violence"],
              at=NOW - timedelta(hours=2))
    match = score(sms, call)
    assert match.score >= thresholds().suggest
    assert "地址相同" in match.reasons and "时间相近" in match.reasons


def test_keys_meet_for_spellings_of_one_child_and_not_for_others():
    a = set(plain_keys(_p(name="王小明", address="幸福里小区3栋", phones=["+8613800138000"])))
    b = set(plain_keys(_p(name="汪晓明", address="幸福里三号楼")))
    c = set(plain_keys(_p(name="李芳", address="石门村")))
    assert a & b and not a & c
    assert "p:+8613800138000" in a
    week = _p(jurisdiction="990102001001")
    assert any(k.startswith("w:990102001001:") for k in plain_keys(week))
    assert len([k for k in query_keys(week) if k.startswith("w:")]) == 3
    named = query_keys(_p(name="王小明", jurisdiction="990102001001"))
    assert not [k for k in named if k.startswith("w:")]
    assert not [k for k in keys(_p(jurisdiction="990100")) if k.startswith("w:")]


def test_stored_keys_are_keyed_hashes_that_meet_as_the_plain_ones_do():
    """What a dump of match_keys shows: no name, sound, phone or place, only the kind."""
    one = _p(name="王小明", address="幸福里小区3栋", phones=["+8613800138000"],
             jurisdiction="990102001001")
    other = _p(name="汪晓明", address="幸福里三号楼", jurisdiction="990102001001")
    stored = keys(one)
    assert len(stored) == len(plain_keys(one))
    for key in stored:
        assert key[:2] in ("f:", "n:", "g:", "p:", "a:", "w:") and len(key) == 34
        assert not any(part in key for part in ("wang", "wxm", "8613800138000", "幸福里"))
    assert set(query_keys(other)) & set(stored)  # still found by the other spelling


def test_could_reach_is_false_only_for_scores_under_the_floor():
    """The ledger skips scoring a candidate `could_reach` rules out: that must never be one
    whose score reaches the floor (the decisions would change)."""
    import random

    from workflows.matching.score import could_reach, name_signal

    rng = random.Random(5)
    names = ["王小明", "王晓明", "王小刚", "李娜", "李雪", "小明", "张子涵", "小涵", None]
    addresses = ["幸福里小区3栋", "幸福里3号楼", "幸福里10栋", "李家村三组", "李家村3队", None]
    places = ["990102001001", "990102001002", "990103001001", "990100", None]
    at = datetime(2026, 3, 1, tzinfo=UTC)

    def profile() -> Profile:
        return Profile(
            name=rng.choice(names), age=rng.choice([None, 6, 9, 10, 11]),
            gender=rng.choice([None, "male", "female"]), address=rng.choice(addresses),
            jurisdiction=rng.choice(places),
            phones=frozenset(rng.sample(["+8613700000001", "+8613700000002"], rng.randint(0, 1))),
            at=rng.choice([None, at, at + timedelta(days=30)]),
            categories=frozenset(rng.sample(["left_behind", "dropout"], rng.randint(0, 2))),
            id_index=rng.choice([None, "a", "b"]),
            text=rng.choice([None, "孩子经常挨打，没人管", "孩子十来岁，经常挨打没人管"]))

    for _ in range(5000):
        a, b = profile(), profile()
        found = score(a, b).score
        for floor in (0.3, 0.5, 0.9):
            if found >= floor:
                assert could_reach(a, b, floor, name_signal(a.name, b.name)), (a, b, found)


def test_a_names_pinyin_is_what_lazy_pinyin_gives():
    """syllables() builds a name's pinyin a character at a time when no phrase is in it;
    names with heteronyms, surnames read otherwise (单, 解, 曾), phrases and Latin letters
    must come out as lazy_pinyin reads them."""
    import random

    from pypinyin import Style, lazy_pinyin

    from workflows.matching.normalize import syllables

    rng = random.Random(3)
    surnames = "王李张刘陈杨黄赵吴周单解仇朴查区曾欧阳"
    given = "子梓浩宇轩涵欣怡佳琪思雨晨俊杰明华婷雪娜重行长乐朝和调都发为好小大"
    names = {rng.choice(surnames) + "".join(rng.choice(given) for _ in range(rng.randint(1, 3)))
             for _ in range(5000)}
    names |= {"单田芳", "曾小贤", "解放", "长孙无忌", "重庆", "行长", "朝阳", "王小明a", "abc",
              "〇"}
    for name in names:
        assert syllables(name) == tuple(lazy_pinyin(name, style=Style.NORMAL,
                                                    errors="default")), name
