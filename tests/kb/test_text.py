"""What customers paste and type is reduced to what they mean before it is matched."""

from __future__ import annotations

import pytest

from kb_index import normalize_text
from kb_index.text import markdown_to_plain


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # greetings and politeness do not take part in the match; the question does
        ("Здравствуйте! Как вернуть товар?", "Как вернуть товар?"),
        ("Добрий день, як змінити адресу доставки?", "як змінити адресу доставки?"),
        ("Hello, how do I reset my password? Thanks!", "how do I reset my password?"),
        ("Подскажите, пожалуйста, сколько стоит доставка? Заранее спасибо", "сколько стоит доставка?"),
        # a message that is nothing but a greeting has nothing to search for
        ("Привет!", ""),
        # links and e-mail addresses are not words of the question
        ("почему удалили видео https://example.com/v/123?x=1 по правилам", "почему удалили видео по правилам"),
        ("пишу с ivan.petrov@mail.example, не пришел код", "пишу с , не пришел код"),
        # invisible characters and control characters vanish
        ("где\u200b мой\u200d заказ\ufeff\x07", "где мой заказ"),
        # CAPS LOCK, repeated punctuation and stretched letters
        ("ОПЛАТА НЕ ПРОХОДИТ!!!!! ЧТО ДЕЛАТЬ???", "оплата не проходит! что делать?"),
        ("помогитеее срочноооо", "помогите срочно"),
        # Latin look-alikes inside Cyrillic words and the reverse
        ("Где мой зaкaз", "Где мой заказ"),
        ("reset my pаsswоrd", "reset my password"),
        # NFKC: full-width letters and ligatures become plain ones
        ("ｏｒｄｅｒ ﬁle", "order file"),
    ],
)
def test_noise_is_removed(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_numbers_and_normal_words_are_left_alone() -> None:
    assert normalize_text("Заказ 1000 пришёл 11.11, трек 00123") == "Заказ 1000 пришёл 11.11, трек 00123"


def test_articles_keep_their_pleasantries_when_asked() -> None:
    assert normalize_text("Спасибо за заказ!", strip_pleasantries=False) == "Спасибо за заказ!"


def test_markdown_answers_become_plain_words() -> None:
    text = "1. Откройте **«Мои заказы»**.\n- Нажмите [здесь](https://polka.example/orders)."
    assert markdown_to_plain(text) == "Откройте «Мои заказы».\nНажмите здесь."
