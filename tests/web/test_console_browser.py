"""The agents' web workplace in a real headless Chromium (Debian's ``chromium``, driven by Playwright), against the
real application: a real Redis, the real model, customers and agents in the Bot API emulator."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.emulator import EmulatedUser
from bot.web.server import web_app
from tests.harness import AGENT_ID, SECOND_AGENT_ID, SUPERVISOR_ID, Running, labels

pytestmark = pytest.mark.slow

AGENT = EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")
SECOND = EmulatedUser(id=SECOND_AGENT_ID, first_name="Катя", language_code="ru")
SUPERVISOR = EmulatedUser(id=SUPERVISOR_ID, first_name="Ирина", language_code="ru")
HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">Анна'
HOSTILE_TEXT = '<script>window.__pwned=2</script><a href="javascript:window.__pwned=3">ссылка</a>'


@pytest.fixture
async def desk_url(running: Running) -> AsyncIterator[str]:
    async with TestServer(web_app(running.app.widget, running.app.console), host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


async def sign_in(running: Running, browser: Any, base: str, person: EmulatedUser) -> Any:
    """The person sends /console to the bot, opens the link it sends and presses the button."""
    [reply] = await running.say(person, "/console")
    assert reply.text is not None
    link = re.search(r"https?://\S+/console/signin\?t=\S+", reply.text)
    assert link is not None, reply.text
    path = link.group(0).split("/console", 1)[1]
    page = await browser.new_page(locale="ru-RU")
    page.on("dialog", lambda dialog: dialog.dismiss())
    await page.goto(f"{base}/console{path}")
    await page.get_by_role("button", name="Войти").click()
    await page.wait_for_url(f"{base}/console")
    assert "t=" not in page.url  # no token left in the address bar
    page.link = f"{base}/console{path}"  # type: ignore[attr-defined]
    return page


async def test_an_agent_takes_answers_and_closes_a_ticket_in_the_browser(
    running: Running, browser: Any, desk_url: str
) -> None:
    from playwright.async_api import expect

    await running.say(AGENT, "/online")
    olga = await sign_in(running, browser, desk_url, AGENT)
    await expect(olga.locator("table.tickets tbody tr")).to_have_count(0)

    # A customer asks for a person in Telegram: the ticket appears in the inbox without a reload.
    customer = EmulatedUser(id=9301, first_name=HOSTILE_NAME, language_code="ru")
    await running.say(customer, HOSTILE_TEXT)
    await running.settle(customer.id)
    await running.say(customer, "позовите оператора")
    row = olga.locator("table.tickets tbody tr")
    await expect(row).to_have_count(1, timeout=10_000)
    await expect(row).to_contain_text(HOSTILE_NAME)  # the name as text, never as markup
    ticket = await running.app.desk.open_ticket_of(customer.id)
    assert ticket is not None

    kate = await sign_in(running, browser, desk_url, SECOND)
    # She starts her shift from the browser, as /online would in the bot.
    assert not await running.app.desk.shifts.is_on(SECOND.id)
    await kate.get_by_role("button", name="○ Не на смене").click()
    await expect(kate.get_by_role("button", name="● На смене")).to_have_attribute("aria-pressed", "true")
    assert await running.app.desk.shifts.is_on(SECOND.id)
    await kate.goto(f"{desk_url}/console/t/{ticket.id}")
    await expect(kate.get_by_role("button", name="Взять")).to_be_visible()

    if os.environ.get("ZABOTA_SCREENSHOTS"):
        await olga.set_viewport_size({"width": 1100, "height": 420})
        await olga.screenshot(path=str(Path(os.environ["ZABOTA_SCREENSHOTS"]) / "console-inbox.png"))
    await row.get_by_role("link", name=ticket.id).click()
    await expect(olga.locator(".viewers")).to_contain_text("Катя", timeout=10_000)  # who else is looking
    await expect(olga.locator(".transcript")).to_contain_text("<script>window.__pwned=2</script>")
    await olga.get_by_role("button", name="Взять").click()
    await expect(olga.locator(".ticket .state")).to_contain_text("Ольга")
    joined = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert any("подключился сотрудник" in (m.text or "") for m in joined)

    # The second agent's page shows it taken, live; taking it anyway is refused.
    await expect(kate.locator(".ticket .state")).to_contain_text("Ольга", timeout=10_000)
    await expect(kate.get_by_role("button", name="Взять")).to_have_count(0)
    result = await running.app.desk.take(ticket.id, SECOND.id, "Катя")
    assert not result.ok and result.reason == "taken"

    await olga.get_by_role("textbox", name="Ваш ответ клиенту").fill("Здравствуйте! Смотрю ваш заказ.")
    await olga.get_by_role("button", name="Отправить клиенту").click()
    [answer] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert answer.text == "Здравствуйте! Смотрю ваш заказ."
    await expect(olga.locator(".transcript li.agent").last).to_contain_text("Смотрю ваш заказ")

    # A canned reply, with the customer's and the agent's names filled in.
    await olga.get_by_role("combobox", name="Отправить шаблон").select_option("checking")
    await olga.get_by_role("button", name="Отправить шаблон").click()
    [canned] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert canned.text == "Проверяю информацию по вашему заказу, это займёт пару минут."

    # An internal note: colleagues see it with who wrote it, as text; the customer never sees it.
    await olga.get_by_role("textbox", name="Заметки видят только сотрудники").fill("<b>VIP</b> & проверить возврат")
    await olga.get_by_role("button", name="Добавить внутреннюю заметку").click()
    await expect(olga.locator("ul.notes li").last).to_have_text("Ольга: <b>VIP</b> & проверить возврат")
    assert await running.settle(customer.id) == []

    # Катя, on the same ticket, sees Ольга typing before her answer arrives.
    await olga.get_by_role("textbox", name="Ваш ответ клиенту").press_sequentially("Секунду")
    await expect(kate.locator(".typing")).to_contain_text("Ольга", timeout=10_000)

    # An article from the knowledge base, found from the composer, as the bot would show it.
    await olga.get_by_role("searchbox", name="Статья из базы знаний для клиента").fill("как отменить заказ")
    await olga.get_by_role("button", name="Найти").click()
    found = olga.locator(".found li", has_text="Как отменить заказ?")
    await found.get_by_role("button", name="Отправить клиенту").click()
    [article] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert (article.text or "").startswith("Как отменить заказ?") and "Передан в доставку" in (article.text or "")
    await expect(olga.locator(".flash")).to_contain_text("отправлена")

    # A photo from the agent's computer reaches the customer as a file; a file of another kind is refused.
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
    await olga.get_by_label("Файл или фото для клиента").set_input_files(
        files=[{"name": "чек.png", "mimeType": "image/png", "buffer": png}]
    )
    await olga.get_by_role("textbox", name="Подпись (необязательно)").fill("Ваш чек")
    await olga.get_by_role("button", name="Отправить файл").click()
    [photo] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
    assert "document" in photo.message and photo.message.get("caption") == "Ваш чек"
    await expect(olga.locator(".transcript li.agent a.file").last).to_contain_text("чек.png")
    await olga.get_by_label("Файл или фото для клиента").set_input_files(
        files=[{"name": "script.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00\x03" * 10}]
    )
    await olga.get_by_role("button", name="Отправить файл").click()
    await expect(olga.locator(".flash")).to_contain_text("только фото, PDF и текст")

    # The customer's answer reaches the page live.
    await running.emulator.send_message(customer, "Заказ 12345, спасибо")
    await expect(olga.locator(".transcript li.customer").last).to_contain_text("Заказ 12345", timeout=10_000)
    # In her inbox, what the customer wrote since she last looked is counted until she opens the ticket.
    await olga.goto(f"{desk_url}/console?view=mine")
    await running.emulator.send_message(customer, "И ещё: можно курьером?")
    await expect(olga.locator(f"tr[data-ticket={ticket.id}] .unread")).to_have_text("1", timeout=10_000)
    await olga.get_by_role("link", name=ticket.id).click()
    await expect(olga.locator(".transcript li.customer").last).to_contain_text("курьером")
    await olga.goto(f"{desk_url}/console?view=mine")
    await expect(olga.locator(f"tr[data-ticket={ticket.id}]")).to_be_visible()
    await expect(olga.locator(".unread")).to_have_count(0)
    await olga.goto(f"{desk_url}/console/t/{ticket.id}")
    if os.environ.get("ZABOTA_SCREENSHOTS"):  # the README's picture of a ticket being worked on
        await olga.set_viewport_size({"width": 1100, "height": 1100})
        await olga.screenshot(path=str(Path(os.environ["ZABOTA_SCREENSHOTS"]) / "console-ticket.png"), full_page=True)

    await olga.get_by_role("button", name="Закрыть: решён").click()
    await expect(olga.locator(".ticket .state")).to_contain_text("закрыт")
    messages = await running.settle(customer.id, quiet=2.0)
    [survey] = [m for m in messages if m.text and m.text.startswith("Насколько вы довольны")]
    assert labels(survey) == ["1", "2", "3", "4", "5"]
    await running.emulator.press_button(customer, survey, "5")
    await running.settle(customer.id)

    # A customer the bot answered itself, who said it helped: the bot's own resolution rate.
    helped = EmulatedUser(id=9302, first_name="Вера", language_code="ru")
    [answer] = await running.say(helped, "Как отменить заказ?")
    await running.emulator.press_button(helped, answer, "👍 Да, помог")
    await running.settle(helped.id)

    # The supervisor's report shows the answer; an agent may not open it.
    await running.say(SUPERVISOR, "/start")
    irina = await sign_in(running, browser, desk_url, SUPERVISOR)
    await irina.goto(f"{desk_url}/console/reports")
    agents_table = irina.locator("#csat_by_agent table")
    await expect(agents_table.locator("tr", has_text="Ольга")).to_contain_text("100%")
    await expect(irina.locator("#csat_by_channel table").locator("tr", has_text="telegram")).to_be_visible()
    await expect(irina.locator("table.reasons")).to_contain_text("бот не нашёл ответа")  # how this one came
    speed = irina.locator("table.speed tr", has_text="Ольга")
    await expect(speed.locator("td").first).to_have_text("1")  # one ticket closed, its first response timed
    article = irina.locator("table.selfservice tr", has_text="Как отменить заказ?")
    await expect(article.locator("td").nth(1)).to_have_text("100%")  # resolved
    await expect(article.locator("td").nth(2)).to_have_text("100%")  # and confirmed by the customer
    csv = await irina.request.get(f"{desk_url}/console/reports.csv?table=agent_speed&days=30")
    assert csv.status == 200 and "Ольга" in await csv.text()
    shots = os.environ.get("ZABOTA_SCREENSHOTS")
    if shots:  # the README's pictures
        await irina.set_viewport_size({"width": 1100, "height": 760})
        await irina.screenshot(path=str(Path(shots) / "console-report.png"))
    # The closed ticket shows the customer's rating; a supervisor gives a waiting ticket to an agent of her choice.
    await irina.goto(f"{desk_url}/console/t/{ticket.id}")
    await expect(irina.locator(".rated")).to_contain_text("CSAT 5/5")
    waiting = EmulatedUser(id=9303, first_name="Пётр", language_code="ru")
    await running.say(waiting, "позовите оператора")
    second_ticket = await running.app.desk.open_ticket_of(waiting.id)
    assert second_ticket is not None
    await running.settle(SECOND.id)
    await irina.goto(f"{desk_url}/console/t/{second_ticket.id}")
    await irina.get_by_role("combobox", name="Назначить").select_option(label="Катя")
    await irina.get_by_role("button", name="Назначить").click()
    await expect(irina.locator(".flash")).to_contain_text("назначен: Катя")
    given = await running.app.desk.get(second_ticket.id)
    assert given is not None and given.agent_id == SECOND.id
    card = await running.emulator.wait_for_bot_messages(SECOND.id, 1, timeout=15)
    assert (card[-1].text or "").startswith("📋 ")

    # The tickets behind a figure.
    await irina.goto(f"{desk_url}/console/reports")
    await irina.locator("table.reasons").get_by_role("link", name="бот не нашёл ответа").click()
    await expect(irina.locator("table.tickets")).to_contain_text(ticket.id)
    refused = await olga.goto(f"{desk_url}/console/reports")
    assert refused is not None and refused.status == 403
    refused = await olga.goto(f"{desk_url}/console/reports/tickets?reason=bot_unsure")
    assert refused is not None and refused.status == 403

    for page in (olga, kate, irina):
        assert await page.evaluate("window.__pwned") is None
        assert await page.locator("main img").count() == 0


async def test_a_link_works_once_and_strangers_are_refused(
    running: Running, browser: Any, desk_url: str
) -> None:
    from playwright.async_api import expect

    olga = await sign_in(running, browser, desk_url, AGENT)
    again = await browser.new_page()
    await again.goto(olga.link)
    await again.get_by_role("button", name="Войти").click()
    await expect(again.locator(".message")).to_contain_text("уже использована")
    response = await again.goto(f"{desk_url}/console")
    assert response is not None and response.status == 401

    # A stranger's /console gets no link.
    stranger = EmulatedUser(id=9302, first_name="Пётр", language_code="ru")
    [reply] = await running.say(stranger, "/console")
    assert "/console/signin" not in (reply.text or "")

    # A forged session cookie is refused; so is a change without the page's CSRF token.
    await again.context.add_cookies([{"name": "zabota_console", "value": "forged", "url": desk_url + "/console"}])
    response = await again.goto(f"{desk_url}/console")
    assert response is not None and response.status == 401
    posted = await olga.request.post(f"{desk_url}/console/t/T1/take", form={"csrf": "wrong"})
    assert posted.status == 403


async def test_an_admin_writes_an_article_from_what_customers_asked(
    running: Running, browser: Any, desk_url: str, tmp_path: Path
) -> None:
    import shutil

    from playwright.async_api import expect

    from tests.conftest import SAMPLE_KB
    from tests.harness import ADMIN_ID

    source = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, source)
    # An article that customers can ask in one way only, its title: the next reindex names it as one to improve.
    (source / "ru" / "gift-wrap.md").write_text(
        "---\nid: gift-wrap\ntitle: Можно упаковать заказ как подарок?\nlang: ru\n---\nДа: упаковка стоит 150 ₽.\n",
        encoding="utf-8",
    )
    assert running.app.console is not None and running.app.console.knowledge is not None
    running.app.console.knowledge.source = source  # as KB_SOURCE would name the company's folder
    customer = EmulatedUser(id=9304, first_name="Анна", language_code="ru")
    await running.say(customer, "Можно ли расплатиться биткоином?")
    await running.settle(customer.id)

    admin = EmulatedUser(id=ADMIN_ID, first_name="Админ", language_code="ru")
    page = await sign_in(running, browser, desk_url, admin)
    await page.get_by_role("link", name="База знаний").click()
    gap = page.locator("table.gaps tr", has_text="биткоином")
    await expect(gap).to_be_visible(timeout=20_000)
    # What the bot does with the knowledge base being served, from its own check when it was built.
    await expect(page.locator(".outlook")).to_contain_text("из 180 вопросов, чьей формулировки нет в индексе")
    await expect(page.locator(".outlook .advice")).to_have_count(0)  # every sample article has six phrasings
    await gap.get_by_role("link", name="Написать статью").click()
    editor = page.locator("form.editor textarea")
    await expect(editor).to_contain_text("Можно ли расплатиться биткоином?")  # the customers' own words
    draft = await editor.input_value()

    # A broken article is refused with the problem, and nothing is written.
    await page.get_by_role("button", name="Сохранить и переиндексировать").click()
    await expect(page.locator(".problems")).to_contain_text("title")
    if os.environ.get("ZABOTA_SCREENSHOTS"):
        await page.screenshot(path=str(Path(os.environ["ZABOTA_SCREENSHOTS"]) / "console-editor.png"))
    assert sorted(p.name for p in source.rglob("new-article-*.md")) == []

    await editor.fill(draft.replace("title: \n", "title: Оплата криптовалютой\n") + "Криптовалюту мы не принимаем.\n")
    await page.get_by_role("button", name="Сохранить и переиндексировать").click()
    await expect(page.locator(".job")).to_contain_text("Готово", timeout=120_000)  # live, without a reload
    await expect(page.locator(".outlook .advice")).to_contain_text(
        "у 1 из 47 статей только одна формулировка вопроса — заголовок (gift-wrap)"
    )
    # The customers' question is answered now: its group says by which article, and asks for no article any more.
    await expect(gap).to_contain_text("1 — теперь отвечает статья «Оплата криптовалютой»")
    await expect(gap.get_by_role("link", name="Написать статью")).to_have_count(0)
    if os.environ.get("ZABOTA_SCREENSHOTS"):  # the README's picture of the knowledge page
        await page.screenshot(path=str(Path(os.environ["ZABOTA_SCREENSHOTS"]) / "console-knowledge.png"))
    # The article to improve opens in the editor in one click.
    await page.locator(".outlook .advice").get_by_role("link", name="ru/gift-wrap.md").click()
    await expect(page.locator("form.editor textarea")).to_contain_text("Можно упаковать заказ как подарок?")
    [written] = list(source.rglob("new-article-*.md"))
    assert "Оплата криптовалютой" in written.read_text(encoding="utf-8")

    olga = await sign_in(running, browser, desk_url, AGENT)
    refused = await olga.goto(f"{desk_url}/console/knowledge")
    assert refused is not None and refused.status == 403


async def test_an_admin_adds_and_removes_an_agent_and_others_may_not(
    running: Running, browser: Any, desk_url: str
) -> None:
    from playwright.async_api import expect

    from tests.harness import ADMIN_ID

    admin = EmulatedUser(id=ADMIN_ID, first_name="Админ", language_code="ru")
    page = await sign_in(running, browser, desk_url, admin)
    await page.get_by_role("link", name="Команда").click()
    await expect(page.locator(f"table.team tr[data-user='{AGENT_ID}']")).to_contain_text("из настроек")

    # A new colleague by his Telegram id: he can sign in at once, and is gone as soon as he is removed.
    newcomer = EmulatedUser(id=7777, first_name="Новичок", language_code="ru")
    await page.get_by_role("textbox", name="Telegram ID").fill(str(newcomer.id))
    await page.get_by_role("button", name="Добавить").click()
    await expect(page.locator(".flash")).to_contain_text("7777 теперь оператор")
    assert await running.app.desk.shifts.is_on(newcomer.id) is False
    fresh = await sign_in(running, browser, desk_url, newcomer)
    refused = await fresh.goto(f"{desk_url}/console/team")
    assert refused is not None and refused.status == 403  # an agent does not manage the team
    await page.reload()
    await page.locator("table.team tr[data-user='7777']").get_by_role("button", name="Убрать").click()
    await expect(page.locator(".flash")).to_contain_text("7777 больше не оператор")
    gone = await fresh.goto(f"{desk_url}/console")
    assert gone is not None and gone.status == 401  # his session ends with his role
