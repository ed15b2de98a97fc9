"""The admins' knowledge page of the workplace (``/console/knowledge``): what customers asked that the knowledge
base could not answer, the articles (where the knowledge base is a folder of Markdown files), an editor, and a
reindex with live progress.

An edited or new article is checked as a reindex checks it (the whole folder read again with the change, in a
copy): a broken file is refused with every problem and line, and nothing on disk changes. A saved change starts a
reindex in the background; the current index keeps answering until the new one is ready. One reindex at a time,
across processes (a Redis lock); its progress is kept in Redis, so any process's page shows it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web

from bot.core.gaps import GapLog
from bot.core.redis_values import text_map
from bot.web import keys
from bot.web.staff import Workplace
from kb_index import IndexUnavailableError, KbSourceError, KnowledgeBase, UnknownArticleError
from kb_index.builder import single_phrasing_figures
from kb_index.calibration import CalibrationReport
from kb_index.gaps import Gap, GapGroup, group_gaps
from kb_index.index import KbIndex
from kb_index.sources import load_articles

__all__ = ["KnowledgePage"]

ROOT = "/console/knowledge"


class KnowledgePage:
    def __init__(self, redis: aioredis.Redis, kb: KnowledgeBase, source: Path, gaps: GapLog) -> None:
        self._redis = redis
        self.kb = kb
        self.source = source
        self.gaps = gaps
        self._job: asyncio.Task[None] | None = None

    def register(self, app: web.Application, console: Workplace) -> None:
        self.console = console
        app.router.add_get(ROOT, self._page)
        app.router.add_get(ROOT + "/edit", self._editor)
        app.router.add_post(ROOT + "/save", self._save)
        app.router.add_post(ROOT + "/reindex", self._reindex)

    # ------------------------------------------------------------------ who may

    def _editable(self) -> bool:
        return self.source.is_dir()

    def _file(self, relative: str) -> Path:
        """A Markdown file inside the knowledge-base folder, or a refusal (no way out of the folder)."""
        path = (self.source / relative).resolve()
        if path.suffix != ".md" or not path.is_relative_to(self.source.resolve()):
            raise self.console.refused(400, "kb_bad_file")
        return path

    # ------------------------------------------------------------------ pages

    async def _page(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me = await self.console.signed_in(request, role="admin")
            found = await self.gaps.since(30)
            groups = await asyncio.to_thread(self._gap_groups, found) if found else []
            articles = sorted(str(p.relative_to(self.source)) for p in self.source.rglob("*.md")) \
                if self._editable() else []
            return self.console.page(
                "knowledge.html", me, live_only=request.headers.get("X-Live") == "1",
                groups=list(enumerate(groups[:20])), articles=articles,
                editable=self._editable(), job=await self.status(), outlook=self._outlook(),
                events_url=f"{self.console.root}/events?knowledge=1&since={await self.fingerprint()}",
            )
        return await self.console.guarded(request, handle)

    def _gap_groups(self, found: list[Gap]) -> list[GapGroup]:
        """What customers asked and the knowledge base could not answer, grouped, those still open first."""
        return group_gaps(self.kb.encoder, found, cache=self.kb.cache, knowledge=self.kb)

    def _outlook(self) -> dict[str, object] | None:
        """What the bot does with the version being served, as its own check found when it was built, and what
        would help (None before any version is built)."""
        try:
            index = self.kb.index
        except IndexUnavailableError:
            return None
        manifest = index.manifest
        report = CalibrationReport.of_version(manifest)
        count, examples = manifest.single_phrasing
        return {
            "figures": report.figures() if report is not None else None,
            "single_phrasing": single_phrasing_figures(count, int(manifest.counts.get("articles", 0)), examples)
            if count else None,
            "single_phrasing_files": self._files_of(index, examples),
        }

    def _files_of(self, index: KbIndex, article_ids: list[str]) -> list[str]:
        """The Markdown files of the knowledge-base folder that these articles were read from, for the editor."""
        if not self._editable():
            return []
        folder = self.source.resolve()
        files: list[str] = []
        for article_id in article_ids:
            try:
                versions = index.versions_of(article_id).values()
            except UnknownArticleError:
                continue
            for article in versions:
                path = Path(article.source.path).resolve() if article.source is not None else None
                if path is not None and path.suffix == ".md" and path.is_relative_to(folder) and path.is_file():
                    files.append(str(path.relative_to(folder)))
        return files

    async def _editor(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me = await self.console.signed_in(request, role="admin")
            relative = request.query.get("file", "")
            if relative:
                text = self._file(relative).read_text(encoding="utf-8")
            else:  # a new article, from a group of unanswered questions
                examples: list[str] = []
                if request.query.get("gap", "").isdigit():
                    found = await self.gaps.since(30)
                    groups = await asyncio.to_thread(self._gap_groups, found)
                    number = int(request.query["gap"])
                    examples = groups[number].examples if number < len(groups) else []
                lang = self.console.texts.default_lang
                relative = f"{lang}/new-article-{int(time.time())}.md"
                questions = "\n".join(f"  - {json.dumps(e, ensure_ascii=False)}" for e in examples) or "  - "
                text = f"---\nid: new-article-{int(time.time())}\ntitle: \nquestions:\n{questions}\nlang: {lang}\n---\n"
            return self.console.page("article.html", me, file=relative, text=text, problems=[])
        return await self.console.guarded(request, handle)

    async def _save(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            me, form = await self.console.checked_post(request, role="admin")
            if not self._editable():
                raise self.console.refused(403, "not_allowed")
            relative = form.get("file", "")
            path = self._file(relative)
            text = form.get("text", "").replace("\r\n", "\n")
            problems = await asyncio.to_thread(self._check, path, text)
            if problems:
                return self.console.page("article.html", me, status=422, file=relative, text=text, problems=problems)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as exc:  # a read-only folder (a volume mounted :ro): said, and nothing changed
                return self.console.page("article.html", me, status=409, file=relative, text=text,
                                         problems=[f"{relative}: {exc.strerror or exc}"])
            self.start_reindex()
            raise web.HTTPSeeOther(ROOT)
        return await self.console.guarded(request, handle)

    def _check(self, path: Path, text: str) -> list[str]:
        """Every problem the knowledge base would have with ``path`` holding ``text``, found in a copy."""
        with tempfile.TemporaryDirectory(prefix="zabota-kb-check-") as tmp:
            copy = Path(tmp) / "kb"
            shutil.copytree(self.source, copy)
            target = copy / path.relative_to(self.source.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            try:
                load_articles(copy)
            except KbSourceError as exc:
                return [str(problem).replace(str(copy) + "/", "") for problem in exc.problems]
        return []

    async def _reindex(self, request: web.Request) -> web.StreamResponse:
        async def handle(request: web.Request) -> web.StreamResponse:
            await self.console.checked_post(request, role="admin")
            self.start_reindex()
            raise web.HTTPSeeOther(ROOT)
        return await self.console.guarded(request, handle)

    # ------------------------------------------------------------------ the reindex job

    def start_reindex(self) -> None:
        if self._job is None or self._job.done():
            self._job = asyncio.create_task(self._run_reindex(), name="console-reindex")

    async def _run_reindex(self) -> None:
        if not await self._redis.set(keys.REINDEX_LOCK, "1", nx=True, ex=3600):
            return  # another process is reindexing; its progress is what the page shows
        loop = asyncio.get_running_loop()

        def progress(stage: str, done: int, total: int) -> None:
            percent = int(100 * done / max(total, 1))
            asyncio.run_coroutine_threadsafe(self._set_status("running", f"{stage} {percent}%"), loop)

        try:
            await self._set_status("running", "…")
            summary = await asyncio.to_thread(self.kb.reindex, self.source, progress)
            await asyncio.sleep(0.1)  # the last progress line lands before the result
            await self._set_status("done", f"v{summary.version}: {summary.articles} · +{len(summary.added)} "
                                           f"~{len(summary.changed)} -{len(summary.removed)} · {summary.seconds:.1f} s")
        except KbSourceError as exc:
            await self._set_status("failed", "; ".join(str(p) for p in exc.problems[:5]))
        finally:
            await self._redis.delete(keys.REINDEX_LOCK)

    async def _set_status(self, state: str, detail: str) -> None:
        await self._redis.hset(keys.REINDEX_STATUS, mapping={"state": state, "detail": detail, "at": str(time.time())})

    async def status(self) -> dict[str, str]:
        return text_map(await self._redis.hgetall(keys.REINDEX_STATUS))

    async def fingerprint(self) -> str:
        status = await self.status()
        return f"{status.get('state', '')}:{status.get('detail', '')}"[:200].replace("\n", " ")

    async def wait(self) -> None:
        """Until the reindex this process started has finished (for tests and shutdown)."""
        if self._job is not None:
            await asyncio.gather(self._job, return_exceptions=True)
