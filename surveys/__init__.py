"""One-tap CSAT and CES at the end of each dialog, alerts on bad scores, and reports.

The store (``SurveyService``) and the reports are plain code over Redis; the Telegram side is in
``surveys.handlers`` and the moments that start a survey in ``surveys.triggers``.
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
