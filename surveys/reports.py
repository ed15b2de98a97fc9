"""What the survey answers say: CSAT, CES, NPS and response rate, overall and by day, agent, article and language.

Definitions (also in the README):
- CSAT: the share of CSAT answers that are 4 or 5 ("satisfied" or "very satisfied"), as Zendesk counts it.
- CES: the mean of the 1-5 answers (5 = very easy) and how many gave each value.
- Response rate: surveys with at least one answer / surveys sent.
- NPS: % promoters (9-10) minus % detractors (0-6), where the question is enabled.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from surveys.models import Question, Survey

__all__ = ["Figures", "Report", "build_report", "export_csv", "render_chart"]


@dataclass
class Figures:
    sent: int = 0
    answered: int = 0
    csat_answers: int = 0
    csat_satisfied: int = 0
    ces_answers: int = 0
    ces_total: int = 0
    ces_distribution: dict[int, int] = field(default_factory=lambda: {v: 0 for v in range(1, 6)})
    nps_answers: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    low_scores: int = 0

    def add(self, survey: Survey) -> None:
        self.sent += 1
        if survey.answers:
            self.answered += 1
        csat = survey.answers.get(Question.CSAT.value)
        if csat is not None:
            self.csat_answers += 1
            self.csat_satisfied += csat >= 4
        ces = survey.answers.get(Question.CES.value)
        if ces is not None:
            self.ces_answers += 1
            self.ces_total += ces
            self.ces_distribution[ces] += 1
        nps = survey.answers.get(Question.NPS.value)
        if nps is not None:
            self.nps_answers += 1
            self.nps_promoters += nps >= 9
            self.nps_detractors += nps <= 6
        self.low_scores += survey.low

    @property
    def csat(self) -> float | None:
        return round(self.csat_satisfied / self.csat_answers, 4) if self.csat_answers else None

    @property
    def ces(self) -> float | None:
        return round(self.ces_total / self.ces_answers, 3) if self.ces_answers else None

    @property
    def response_rate(self) -> float | None:
        return round(self.answered / self.sent, 4) if self.sent else None

    @property
    def nps(self) -> float | None:
        if not self.nps_answers:
            return None
        return round(100 * (self.nps_promoters - self.nps_detractors) / self.nps_answers, 1)

    def to_dict(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "answered": self.answered,
            "response_rate": self.response_rate,
            "csat": self.csat,
            "csat_answers": self.csat_answers,
            "ces": self.ces,
            "ces_answers": self.ces_answers,
            "ces_distribution": {str(k): v for k, v in self.ces_distribution.items()},
            "nps": self.nps,
            "nps_answers": self.nps_answers,
            "low_scores": self.low_scores,
        }


@dataclass
class Report:
    since: float
    until: float
    overall: Figures
    by_day: dict[str, Figures]
    by_agent: dict[str, Figures]
    by_article: dict[str, Figures]
    by_lang: dict[str, Figures]

    def to_dict(self) -> dict[str, object]:
        return {
            "since": datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds"),
            "until": datetime.fromtimestamp(self.until, UTC).isoformat(timespec="seconds"),
            "definitions": {
                "csat": "share of CSAT answers that are 4 or 5",
                "ces": "mean CES answer, 1 = very hard, 5 = very easy",
                "response_rate": "surveys with at least one answer / surveys sent",
                "nps": "% promoters (9-10) - % detractors (0-6)",
            },
            "overall": self.overall.to_dict(),
            "by_day": {k: v.to_dict() for k, v in sorted(self.by_day.items())},
            "by_agent": {k: v.to_dict() for k, v in sorted(self.by_agent.items())},
            "by_article": {k: v.to_dict() for k, v in sorted(self.by_article.items())},
            "by_lang": {k: v.to_dict() for k, v in sorted(self.by_lang.items())},
        }


def build_report(surveys: Iterable[Survey], since: float, until: float) -> Report:
    overall = Figures()
    groups: dict[str, dict[str, Figures]] = {name: defaultdict(Figures) for name in ("day", "agent", "article", "lang")}
    for survey in surveys:
        overall.add(survey)
        groups["day"][datetime.fromtimestamp(survey.sent_at, UTC).strftime("%Y-%m-%d")].add(survey)
        groups["agent"][survey.agent_name or "bot"].add(survey)
        for article in survey.articles or ["-"]:
            groups["article"][article].add(survey)
        groups["lang"][survey.lang or "?"].add(survey)
    return Report(since, until, overall, dict(groups["day"]), dict(groups["agent"]), dict(groups["article"]),
                  dict(groups["lang"]))


_CSV_FIELDS = (
    "id", "sent_at", "trigger", "lang", "channel", "ticket_id", "agent_id", "agent_name", "articles", "csat", "ces",
    "nps", "comment", "answered_at", "waited_seconds", "handled_seconds", "chat_id",
)


def format_table(report: Report) -> str:
    """The report as plain-text tables (``zabota stats``): overall, then per agent, language, article and day."""
    since = datetime.fromtimestamp(report.since, UTC).strftime("%Y-%m-%d")
    until = datetime.fromtimestamp(report.until, UTC).strftime("%Y-%m-%d")
    lines = [f"Surveys {since} .. {until} (CSAT: share of 4-5 answers; CES: mean, 1 very hard .. 5 very easy)", ""]
    header = f"{'':<28} {'sent':>6} {'answered':>9} {'rate':>6} {'CSAT':>6} {'n':>5} {'CES':>5} {'n':>5} {'low':>5}"

    def row(name: str, f: Figures) -> str:
        return (
            f"{name[:28]:<28} {f.sent:>6} {f.answered:>9} {_pct(f.response_rate):>6} {_pct(f.csat):>6} "
            f"{f.csat_answers:>5} {'-' if f.ces is None else f'{f.ces:.2f}':>5} {f.ces_answers:>5} {f.low_scores:>5}"
        )

    lines += [header, row("all", report.overall)]
    if report.overall.nps is not None:
        lines.append(f"NPS {report.overall.nps:+.0f} ({report.overall.nps_answers} answers)")
    for title, groups in (("by agent", report.by_agent), ("by language", report.by_lang),
                          ("by article", report.by_article), ("by day", report.by_day)):
        if groups:
            lines += ["", title, header]
            ordered = sorted(groups.items()) if title == "by day" else sorted(
                groups.items(), key=lambda item: -item[1].sent)
            lines += [row(name, figures) for name, figures in ordered]
    return "\n".join(lines)


def export_csv(surveys: Sequence[Survey]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS)
    writer.writeheader()
    for survey in surveys:
        row = asdict(survey)
        writer.writerow(
            {
                **{k: row[k] for k in _CSV_FIELDS if k in row},
                "sent_at": datetime.fromtimestamp(survey.sent_at, UTC).isoformat(timespec="seconds"),
                "answered_at": datetime.fromtimestamp(survey.answered_at, UTC).isoformat(timespec="seconds")
                if survey.answered_at
                else "",
                "trigger": survey.trigger.value,
                "articles": ";".join(survey.articles),
                "csat": survey.answers.get("csat", ""),
                "ces": survey.answers.get("ces", ""),
                "nps": survey.answers.get("nps", ""),
            }
        )
    return out.getvalue()


def render_chart(report: Report, title: str = "") -> bytes:
    """A PNG: CSAT and CES by day over the report's period, and a table per agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = sorted(report.by_day)
    csat = [report.by_day[d].csat for d in days]
    ces = [report.by_day[d].ces for d in days]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), gridspec_kw={"height_ratios": [3, 2]})
    x = list(range(len(days)))
    top.plot(x, [100 * v if v is not None else float("nan") for v in csat], marker="o", label="CSAT, % satisfied (4-5)")
    top.set_ylim(0, 105)
    top.set_ylabel("CSAT %")
    top.set_xticks(x, [d[5:] for d in days], rotation=45, fontsize=8)
    twin = top.twinx()
    twin.plot(x, [v if v is not None else float("nan") for v in ces], marker="s", color="tab:orange", label="CES, mean 1-5")
    twin.set_ylim(1, 5.2)
    twin.set_ylabel("CES")
    lines = top.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    top.legend(lines, [ln.get_label() for ln in lines], loc="lower left", fontsize=8)
    overall = report.overall
    top.set_title(
        title
        or f"CSAT {_pct(overall.csat)} · CES {overall.ces if overall.ces is not None else '-'} · "
        f"response rate {_pct(overall.response_rate)} · {overall.sent} surveys"
    )
    bottom.axis("off")
    rows = [
        [agent, str(f.sent), _pct(f.response_rate), _pct(f.csat), f"{f.ces:.2f}" if f.ces is not None else "-", str(f.low_scores)]
        for agent, f in sorted(report.by_agent.items())
    ] or [["-", "0", "-", "-", "-", "0"]]
    table = bottom.table(cellText=rows, colLabels=["agent", "surveys", "answered", "CSAT", "CES", "low"], loc="center")
    table.scale(1, 1.4)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"
