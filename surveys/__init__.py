"""One-tap CSAT and CES surveys at the end of each dialog, alerts on bad scores, and reports."""
