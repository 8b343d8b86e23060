"""Split reports, leaderboard tables and the static leaderboard site.

Modules: :mod:`~cryobench.report.loading` (records in), :mod:`~cryobench.report.stats`
(vectorised scores and bootstrap), :mod:`~cryobench.report.summary` (entries and ranks),
:mod:`~cryobench.report.leaderboard` (Markdown/CSV tables), :mod:`~cryobench.report.site`
(the static site), :mod:`~cryobench.report.split_report` (``cryobench report``),
:mod:`~cryobench.report.ablation` (ablation analysis) and :mod:`~cryobench.report.figures`.
"""
