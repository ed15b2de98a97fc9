"""Which language to answer in: the message's own letters and words first, Telegram's language second."""

from __future__ import annotations

import pytest

from intents import detect_language, normalize_language_code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Здравствуйте, где мой заказ?", "ru"),
        ("Почему с карты списали деньги дважды", "ru"),
        ("ещё не пришёл", "ru"),
        ("Добрий день, де моє замовлення?", "uk"),
        ("як повернути товар", "uk"),
        ("що з доставкою", "uk"),
        ("дякую", "uk"),
        ("будь ласка, допоможіть", "uk"),
        ("Where is my order?", "en"),
        ("I want to talk to a real person", "en"),
        ("iPhone 15 не заряжается", "ru"),
    ],
)
def test_a_message_says_its_own_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("prior", ["ru", "uk", "en"])
def test_a_clear_message_outweighs_the_telegram_language(prior: str) -> None:
    assert detect_language("Где мой заказ? Уже неделю жду", prior) == "ru"
    assert detect_language("Де моє замовлення? Вже тиждень чекаю", prior) == "uk"
    assert detect_language("Where is my order? I have been waiting for a week", prior) == "en"


@pytest.mark.parametrize(
    ("text", "prior", "expected"),
    [
        ("ok", "ru-RU", "ru"),  # too short to say anything: the customer reads Russian
        ("?", "uk", "uk"),
        ("👍", "en", "en"),
        ("доставка", "uk", "uk"),  # a word both languages write the same way
        ("спасибо", "uk", "uk"),  # one Russian word is how many Ukrainians write too
        ("ok", None, "en"),
        ("?", None, "ru"),
        ("спасибо", None, "ru"),
        ("доставка", "en", "ru"),  # Cyrillic is never English
    ],
)
def test_too_little_to_go_on_falls_back_to_the_telegram_language(text: str, prior: str | None, expected: str) -> None:
    assert detect_language(text, prior) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ru-RU", "ru"),
        ("ru", "ru"),
        ("uk", "uk"),
        ("ua", "uk"),
        ("UK-ua", "uk"),
        ("en-GB", "en"),
        ("de", "en"),
        ("pl", "en"),
        ("be", "ru"),
        ("kk", "ru"),
        ("", None),
        (None, None),
    ],
)
def test_telegram_language_codes_become_zabota_languages(code: str | None, expected: str | None) -> None:
    assert normalize_language_code(code) == expected
