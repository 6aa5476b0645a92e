import pytest

from bot.municipalities import ALL, REGIONS, Municipality, candidates, match_municipality, region


def test_kagoshima_has_43_municipalities_19_cities_20_towns_and_4_villages():
    names = [m.name for m in ALL]
    assert len(set(names)) == len(names) == 43
    assert sum(n.endswith("市") for n in names) == 19
    assert sum(n.endswith("町") for n in names) == 20
    assert sum(n.endswith("村") for n in names) == 4


def test_the_seven_regions_come_in_the_prefectures_order():
    assert [(r.id, r.name) for r in REGIONS] == [
        ("kagoshima", "鹿児島"), ("nansatsu", "南薩"), ("hokusatsu", "北薩"), ("aira_isa", "姶良・伊佐"),
        ("osumi", "大隅"), ("kumage", "熊毛"), ("amami", "奄美"),
    ]


def test_every_municipality_is_in_exactly_the_region_it_names():
    listed = [m for r in REGIONS for m in r.municipalities]
    assert sorted(m.name for m in listed) == sorted(m.name for m in ALL)
    assert all(m.region == r.id for r in REGIONS for m in r.municipalities)


@pytest.mark.parametrize("region_id, names", [
    ("kagoshima", {"鹿児島市", "日置市", "いちき串木野市", "三島村", "十島村"}),
    ("nansatsu", {"枕崎市", "指宿市", "南さつま市", "南九州市"}),
    ("hokusatsu", {"阿久根市", "出水市", "薩摩川内市", "さつま町", "長島町"}),
    ("aira_isa", {"霧島市", "伊佐市", "姶良市", "湧水町"}),
    ("osumi", {"鹿屋市", "垂水市", "曽於市", "志布志市", "大崎町", "東串良町", "錦江町", "南大隅町", "肝付町"}),
    ("kumage", {"西之表市", "中種子町", "南種子町", "屋久島町"}),
    ("amami", {"奄美市", "大和村", "宇検村", "瀬戸内町", "龍郷町", "喜界町", "徳之島町", "天城町", "伊仙町",
               "和泊町", "知名町", "与論町"}),
])
def test_region_holds_its_municipalities(region_id, names):
    assert {m.name for m in region(region_id).municipalities} == names


def test_an_unknown_region_id_is_an_error():
    with pytest.raises(KeyError):
        region("tokyo")


def test_readings_are_hiragana():
    assert all(m.kana and all("ぁ" <= c <= "ゖ" for c in m.kana) for m in ALL)


@pytest.mark.parametrize("text, name", [
    ("鹿児島市", "鹿児島市"),
    ("鹿児島", "鹿児島市"),
    ("鹿児島県鹿児島市", "鹿児島市"),
    ("霧島", "霧島市"),
    ("きりしま", "霧島市"),
    ("キリシマ", "霧島市"),
    ("ｷﾘｼﾏ", "霧島市"),
    ("きりしまし", "霧島市"),
    ("霧島市国分", "霧島市"),
    ("鹿児島県霧島市隼人町", "霧島市"),
    ("　霧島市　", "霧島市"),
    ("薩摩川内", "薩摩川内市"),
    ("さつませんだい", "薩摩川内市"),
    ("屋久島", "屋久島町"),
    ("南さつま", "南さつま市"),
    ("みなみさつま", "南さつま市"),
    ("さつま町", "さつま町"),
    ("いちき串木野", "いちき串木野市"),
    ("鹿児島郡三島村", "三島村"),
    ("鹿児島県大島郡瀬戸内町古仁屋", "瀬戸内町"),
    ("姶良郡湧水町", "湧水町"),
    ("曽於郡大崎町", "大崎町"),
    ("ヨロン", "与論町"),
])
def test_matches_free_text_to_a_municipality(text, name):
    found = match_municipality(text)
    assert found is not None and found.name == name


@pytest.mark.parametrize("text", [
    "鹿児島県", "", "大阪市", "宮崎", "種子", "鹿屋市と霧島市", "ちいさい会社です",
])
def test_matches_nothing_when_the_text_names_no_single_municipality(text):
    assert match_municipality(text) is None


def test_a_match_carries_its_region():
    assert match_municipality("奄美") == Municipality("奄美市", "あまみし", "amami")


@pytest.mark.parametrize("text, names", [
    ("種子", ["中種子町", "南種子町"]),
    ("さつま", ["南さつま市", "薩摩川内市", "さつま町"]),
    ("鹿屋市と霧島市", ["霧島市", "鹿屋市"]),
    ("霧島市国分", ["霧島市"]),
    ("串木野", ["いちき串木野市"]),
    ("南大隅", ["南大隅町"]),
    ("し", []),
    ("鹿児島県", []),
    ("東京", []),
])
def test_candidates_offer_every_municipality_the_text_may_mean(text, names):
    assert [m.name for m in candidates(text)] == names
