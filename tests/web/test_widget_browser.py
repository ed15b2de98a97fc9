"""The chat widget in a real headless Chromium (Debian's ``chromium``, driven by Playwright), embedded in a page of
another origin, against the real application: a real Redis, the real model, agents in the Bot API emulator."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.emulator import EmulatedUser
from tests.harness import AGENT_ID, Running

pytestmark = pytest.mark.slow

AGENT = EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")
@pytest.fixture
async def widget_url(running: Running) -> AsyncIterator[str]:
    assert running.app.widget is not None
    async with TestServer(running.app.widget.web_app(), host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


@pytest.fixture
async def shop(widget_url: str, running: Running) -> AsyncIterator[str]:
    """The company's website, on an origin of its own, embedding the widget by its one line."""

    def page(attributes: str) -> str:
        return (
            "<!doctype html><html lang='ru'><head><meta charset='utf-8'><title>Shop</title></head><body>"
            f"<h1>Shop</h1><script src='{widget_url}/widget.js' async {attributes}></script></body></html>"
        )

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text=page(""), content_type="text/html")

    async def forged(request: web.Request) -> web.Response:
        return web.Response(text=page("data-user-id='1' data-user-name='Admin' data-user-hash='beef'"),
                            content_type="text/html")

    site = web.Application()
    site.router.add_get("/", plain)
    site.router.add_get("/forged", forged)
    async with TestServer(site, host="localhost") as server:
        origin = str(server.make_url("")).rstrip("/")
        assert running.app.widget is not None
        running.app.widget.settings.allowed_origins.append(origin)  # as WEB_ALLOWED_ORIGINS would list it
        yield origin


async def test_a_visitor_asks_is_handed_off_and_surveyed_in_the_browser(
    running: Running, shop: str, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await running.say(AGENT, "/online")
    page = await browser.new_page(locale="ru-RU")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    await page.goto(shop + "/")
    launcher = page.get_by_role("button", name="Открыть чат поддержки")
    await launcher.click()
    await expect(page.locator(".msg.bot").first).to_contain_text("Здравствуйте", timeout=20_000)

    # A question in Russian: the article, its title in bold, and "did it help?" buttons.
    box = page.get_by_role("textbox", name="Ваше сообщение")
    await box.fill("Как отменить заказ?")
    await box.press("Enter")
    await expect(page.locator(".msg.bot b", has_text="Как отменить заказ?")).to_be_visible(timeout=20_000)

    # Out of scope: handed to a person, who answers from Telegram.
    await box.fill("Какой курс биткоина будет завтра?")
    await page.get_by_role("button", name="Отправить").click()
    await expect(page.locator(".msg.bot").last).to_contain_text("Передаю ваш вопрос сотруднику", timeout=20_000)
    [announcement] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    assert announcement.text is not None
    ticket_id = announcement.text.split(":")[0].removeprefix("🆕 ")
    await running.tap(AGENT, announcement, f"Взять {ticket_id}")
    await expect(page.locator(".msg.bot").last).to_contain_text("подключился сотрудник", timeout=20_000)

    hostile = '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script>'
    await running.emulator.send_message(AGENT, f"Смотрю ваш вопрос {hostile}")
    await expect(page.locator(".msg.agent").last).to_contain_text("<img src=x onerror", timeout=20_000)
    await box.fill(f"Вот что пишет сайт: {hostile}")
    await box.press("Enter")
    relayed = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    assert relayed[-1].text is not None and relayed[-1].text.endswith(f"Вот что пишет сайт: {hostile}")
    await expect(page.locator(".msg.visitor").last).to_contain_text("<script>window.__pwned=2</script>")
    assert await page.evaluate("window.__pwned") is None and dialogs == []
    assert await page.locator(".log img").count() == 0 and await page.locator(".log script").count() == 0

    # A reload shows the whole conversation, open where it was.
    before = await page.locator(".msg").count()
    await page.reload()
    await expect(page.locator(".msg")).to_have_count(before, timeout=20_000)

    # A screenshot from the visitor reaches the agent as a file; the page shows it.
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
    await page.locator("input[type=file]").set_input_files(
        files=[{"name": "screenshot.png", "mimeType": "image/png", "buffer": png}]
    )
    [document] = await running.emulator.wait_for_bot_messages(AGENT.id, 1, timeout=15)
    assert "document" in document.message
    await expect(page.locator(".msg.visitor .file img")).to_have_count(1, timeout=20_000)

    # The agent closes the ticket: the survey, one tap, recorded.
    [question] = await running.say(AGENT, "/close")
    await running.tap(AGENT, question, "✅ Решён")
    survey = page.locator(".msg.bot", has_text="Насколько вы довольны")
    await expect(survey).to_be_visible(timeout=20_000)
    await survey.get_by_role("button", name="5", exact=True).click()
    await expect(page.locator(".msg.bot", has_text="Насколько легко")).to_be_visible(timeout=20_000)
    closed = await running.app.desk.get(ticket_id)
    assert closed is not None
    recorded = [s for s in await running.app.surveys.surveys(since=0) if s.ticket_id == ticket_id]
    assert recorded and recorded[0].answers.get("csat") == 5 and recorded[0].channel == "web"

    shots = os.environ.get("ZABOTA_SCREENSHOTS")
    if shots:
        await page.set_viewport_size({"width": 900, "height": 720})
        await page.screenshot(path=str(Path(shots) / "widget.png"))
    assert await page.evaluate("window.__pwned") is None and dialogs == []


async def test_a_forged_identity_is_refused_in_the_browser(running: Running, shop: str, browser: Any) -> None:
    from playwright.async_api import expect

    assert running.app.widget is not None
    running.app.widget.visitors.identity_secret = "site-secret"  # as WEB_IDENTITY_SECRET would set it
    page = await browser.new_page(locale="ru-RU")
    await page.goto(shop + "/forged")
    await page.get_by_role("button", name="Открыть чат поддержки").click()
    await expect(page.locator(".notice")).to_contain_text("signature does not match", timeout=20_000)
    assert await page.locator(".msg").count() == 0  # nobody's conversation is shown


async def test_the_widget_is_usable_by_keyboard_and_on_a_phone(running: Running, shop: str, browser: Any) -> None:
    from playwright.async_api import expect

    page = await browser.new_page(locale="en-US", viewport={"width": 375, "height": 667}, has_touch=True)
    await page.goto(shop + "/")
    await page.keyboard.press("Tab")  # the chat button is reachable by keyboard
    await page.keyboard.press("Enter")
    panel = page.get_by_role("dialog")
    await expect(panel).to_be_visible()
    box = await panel.bounding_box()
    assert box is not None and box["width"] == 375  # the whole phone screen
    await expect(page.get_by_role("log")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()


async def test_messages_written_offline_go_out_once_when_the_connection_returns(
    running: Running, shop: str, browser: Any
) -> None:
    from playwright.async_api import expect

    context = await browser.new_context(locale="ru-RU")
    page = await context.new_page()
    await page.goto(shop + "/")
    await page.get_by_role("button", name="Открыть чат поддержки").click()
    await expect(page.locator(".msg.bot").first).to_contain_text("Здравствуйте", timeout=20_000)

    await context.set_offline(True)
    box = page.get_by_role("textbox", name="Ваше сообщение")
    await box.fill("Как отменить заказ?")
    await box.press("Enter")
    await expect(page.locator(".status")).to_contain_text("Нет связи", timeout=10_000)
    await page.wait_for_timeout(3500)  # the widget has tried (and failed) at least once meanwhile
    await context.set_offline(False)
    await expect(page.locator(".msg.bot b", has_text="Как отменить заказ?")).to_be_visible(timeout=30_000)

    # A second tab of the same visitor shows the same conversation, the question once, answered once.
    second = await context.new_page()
    await second.goto(shop + "/")
    await second.get_by_role("button", name="Открыть чат поддержки").click()
    await expect(second.locator(".msg.visitor")).to_have_count(1, timeout=20_000)
    await expect(second.locator(".msg.bot b", has_text="Как отменить заказ?")).to_have_count(1)
    await context.close()
