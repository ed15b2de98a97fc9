"""One-tap CSAT and CES at the end of each dialog, alerts on bad scores, and reports.

The store (``SurveyService``), the questions every channel asks (``surveys.questions``), the alerts on bad scores
(``surveys.alerts``) and the reports are plain code over Redis; the moments that start a survey are in
``surveys.triggers``. Each channel shows the questions its own way (Telegram: ``bot.telegram.surveys``).
"""

from surveys.models import Question, Survey, SurveyTrigger, TapOutcome, TapResult
from surveys.reports import Figures, Report, build_report, export_csv, render_chart
from surveys.service import SurveyService

__all__ = [
    "Figures",
    "Question",
    "Report",
    "Survey",
    "SurveyService",
    "SurveyTrigger",
    "TapOutcome",
    "TapResult",
    "build_report",
    "export_csv",
    "render_chart",
]
