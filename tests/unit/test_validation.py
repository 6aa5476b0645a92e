import pytest

from bot.validation import Contact, parse_contact, parse_email, parse_phone


@pytest.mark.parametrize("text, normalized", [
    ("099-286-2111", "099-286-2111"),
    ("0992862111", "099-286-2111"),
    ("０９９ー２８６ー２１１１", "099-286-2111"),
    ("099‐286−2111", "099-286-2111"),
    ("099－286－2111", "099-286-2111"),
    ("(099) 286-2111", "099-286-2111"),
    ("099 286 2111", "099-286-2111"),
    ("+81 99-286-2111", "099-286-2111"),
    ("+81 (0)99-286-2111", "099-286-2111"),
    ("0995123456", "0995-12-3456"),
    ("0997-52-1111", "0997-52-1111"),
    ("0996921234", "09969-2-1234"),
    ("0312345678", "03-1234-5678"),
    ("092-123-4567", "092-123-4567"),
    ("0467 12 3456", "0467-12-3456"),
    ("0921234567", "0921234567"),
    ("09012345678", "090-1234-5678"),
    ("080 1234 5678", "080-1234-5678"),
    ("070(1234)5678", "070-1234-5678"),
    ("+81-90-1234-5678", "090-1234-5678"),
    ("+819012345678", "090-1234-5678"),
    ("05012345678", "050-1234-5678"),
    ("0120123456", "0120-123-456"),
    ("0800-1234567", "0800-123-4567"),
    ("  090-1234-5678  ", "090-1234-5678"),
])
def test_accepts_japanese_phone_numbers_and_hyphenates_them(text, normalized):
    assert parse_phone(text) == (normalized, None)


@pytest.mark.parametrize("text, says", [
    ("", "入力してください"),
    ("ー", "入力してください"),
    ("090-1234-567", "11桁"),
    ("099-286-211", "10桁"),
    ("0120-123-4567", "10桁"),
    ("99-286-2111", "「0」から"),
    ("090-1234-567８a", "使えない文字"),
    ("でんわ", "使えない文字"),
    ("0570-123-456", "お電話できない"),
    ("020-1234-5678", "お電話できない"),
])
def test_rejects_a_phone_number_with_a_reason_and_an_example(text, says):
    normalized, reason = parse_phone(text)
    assert normalized is None
    assert says in reason and "例" in reason


@pytest.mark.parametrize("text, normalized", [
    ("taro@example.jp", "taro@example.jp"),
    ("  taro@example.jp\n", "taro@example.jp"),
    ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "taro@example.jp"),
    ("Taro.Yamada+dx@Example.CO.JP", "Taro.Yamada+dx@example.co.jp"),
    ("taro..@docomo.ne.jp", "taro..@docomo.ne.jp"),
    ("info@city.kagoshima.lg.jp", "info@city.kagoshima.lg.jp"),
    ("taro@mail.com", "taro@mail.com"),
])
def test_accepts_email_addresses(text, normalized):
    assert parse_email(text) == (normalized, None)


@pytest.mark.parametrize("text, says", [
    ("", "入力してください"),
    ("taro@gmail.con", "「gmail.com」の間違い"),
    ("taro@gmail.co", "「gmail.com」の間違い"),
    ("taro@yahoo.co.jo", "「yahoo.co.jp」の間違い"),
    ("taro@shop.con", "「shop.com」の間違い"),
    ("taro@example,jp", "カンマ"),
    ("taro@example", "「.」（ドット）がありません"),
    ("taroexample.jp", "「@」が見つかりません"),
    ("taro@@example.jp", "2つ以上"),
    ("taro @example.jp", "空白"),
    ("太郎@example.jp", "半角"),
    ("@example.jp", "「@」の前"),
    ("taro@example..jp", "「@」の後ろの部分"),
    ("taro@-example.jp", "「@」の後ろの部分"),
    ("taro@example.123", "「@」の後ろの部分"),
    ("a" * 250 + "@example.jp", "長すぎます"),
])
def test_rejects_an_email_address_with_a_reason(text, says):
    normalized, reason = parse_email(text)
    assert normalized is None
    assert says in reason


@pytest.mark.parametrize("text, phone, email", [
    ("090-1234-5678 / taro@example.jp", "090-1234-5678", "taro@example.jp"),
    ("電話：０９０ー１２３４ー５６７８、メール：taro@example.jp", "090-1234-5678", "taro@example.jp"),
    ("090-1234-5678,taro@example.jp", "090-1234-5678", "taro@example.jp"),
    ("taro@example.jp,090-1234-5678", "090-1234-5678", "taro@example.jp"),
    ("電話は099 286 2111です", "099-286-2111", None),
    ("TEL +81 (0)99-286-2111", "099-286-2111", None),
    ("taro@example.jp。", None, "taro@example.jp"),
    ("090-1234-5678 / taro@gmail.con", "090-1234-5678", None),
])
def test_finds_a_phone_number_and_an_email_address_in_a_message(text, phone, email):
    assert parse_contact(text) == Contact(phone, email, None)


@pytest.mark.parametrize("text, says", [
    ("よろしくお願いします", "電話番号かメールアドレス"),
    ("2名で伺います", "電話番号かメールアドレス"),
    ("taro@gmail.con", "「gmail.com」の間違い"),
    ("taro@example,jp です", "カンマ"),
    ("090-1234-567", "11桁"),
])
def test_explains_a_message_with_no_valid_contact(text, says):
    phone, email, reason = parse_contact(text)
    assert phone is None and email is None
    assert says in reason
