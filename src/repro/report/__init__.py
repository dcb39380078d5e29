"""The report: job folders -> tables, figures, claim checks -> one self-contained HTML page.

- `collect`: read exactly the job folders a report job names into pandas DataFrames (`ReportData`).
- `claims`: test the spec's claims: per claim an effect, its 95% bootstrap interval and a verdict.
- `figures`, `figures_analysis`: seaborn figures as deterministic base64 PNGs, one palette per condition
  (`figures.forest`: every claim's effect and interval on one axis).
- `sections`: which sections exist for the data at hand, each as HTML.
- `html`: page primitives (tables, figures, the page shell).

The stage entry point is `repro.stages.report.run`; `repro.publish` copies finished reports to reports/.
"""
