"""HTML primitives of the report and the index: escaping, tables, figures, sections, the page shell.

Pages are self-contained: inline CSS, images as data: URIs, no scripts, and a Content-Security-Policy
that forbids every external request. The only line that changes between two renders of the same data is
the generated-at line, marked with `TIMESTAMP_MARK` (`strip_timestamp` removes it, for comparisons);
its time is $SOURCE_DATE_EPOCH when set, so even that line can be pinned.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd

if TYPE_CHECKING:  # the page shell needs no plotting: `repro publish` must not import seaborn
    from repro.report.figures import Fig

TIMESTAMP_MARK = "<!-- generated-at -->"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --fg:#1d232a; --muted:#5b6570; --line:#d9dee3; --bg:#ffffff; --soft:#f4f6f8; --ok:#1a7f37; --bad:#b42318; --na:#6e7781; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; } h2 { font-size: 1.25rem; margin: 36px 0 8px; padding-top: 8px;
     border-top: 1px solid var(--line); } h3 { font-size: 1.05rem; margin: 20px 0 6px; }
p.lead { font-size: 1.08rem; margin: 8px 0 12px; } .muted, .generated { color: var(--muted); font-size: .88rem; }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; margin: 16px 0; }
nav.toc a { margin-right: 14px; white-space: nowrap; color: #0b5cad; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: .86rem; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; } tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 12px 0 20px; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: .88rem; margin-top: 4px; max-width: 900px; }
.swatch { display: inline-block; width: .85em; height: .85em; border-radius: 2px; margin-right: 6px; vertical-align: -1px;
          border: 1px solid rgba(0,0,0,.25); }
.ok, .bad, .na, .weak, .weak-bad { white-space: nowrap; } .ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; } .na { color: var(--na); }
.weak { color: #4d7f5a; } .weak-bad { color: #9a5b00; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .8rem; font-weight: 600; background: var(--soft);
         border: 1px solid var(--line); } .badge.done, .badge.complete { background: #e6f4ea; border-color: #b7dfc3; color: var(--ok); }
.badge.partial, .badge.not-run, .badge.no-results { background: #fff4e5; border-color: #f3d3a3; color: #8a5300; }
pre, code { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: .82rem; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px; overflow-x: auto; }
details { margin: 6px 0 14px; } summary { cursor: pointer; color: #0b5cad; }
.warn { background: #fff4e5; border: 1px solid #f3d3a3; border-radius: 6px; padding: 8px 12px; }
"""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def cell(v: Any) -> tuple[str, bool]:
    """Display text of a table value and whether it is numeric."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "–", False
    if isinstance(v, bool):
        return ("yes" if v else "no"), False
    if isinstance(v, int) or (hasattr(v, "dtype") and "int" in str(getattr(v, "dtype", ""))):
        return str(int(v)), True
    if isinstance(v, float) or hasattr(v, "dtype"):
        f = float(v)
        return (f"{f:.3f}" if abs(f) < 100 else f"{f:.4g}" if abs(f) < 1e4 else f"{f:.0f}"), True
    return str(v), False


def table(df: pd.DataFrame, swatches: dict[str, str] | None = None, key: str = "condition",
          raw: Iterable[str] = (), caption: str | None = None) -> str:
    """An HTML table of a DataFrame; cells of column `key` get a colour swatch from `swatches`;
    columns named in `raw` hold trusted HTML."""
    if df is None or df.empty:
        return ""
    raw = set(raw)
    head = "".join(f"<th scope='col'>{esc(c)}</th>" for c in df.columns)
    body = []
    for _, r in df.iterrows():
        tds = []
        for c in df.columns:
            v = r[c]
            if c in raw:
                tds.append(f"<td>{v}</td>")
                continue
            text, num = cell(v)
            sw = ""
            if swatches and c == key and str(v) in swatches:
                sw = f"<span class='swatch' style='background:{swatches[str(v)]}'></span>"
            tds.append(f"<td class='num'>{esc(text)}</td>" if num else f"<td>{sw}{esc(text)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    cap = f"<caption class='muted'>{esc(caption)}</caption>" if caption else ""
    return f"<div class='scroll'><table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def figure(fig: Fig | None, details: str = "") -> str:
    """An <img> with alt text and caption; `details` (HTML, e.g. the data as a table) goes in a <details>."""
    if fig is None:
        return ""
    more = f"<details><summary>numbers behind this figure</summary>{details}</details>" if details else ""
    return (f"<figure><img src='data:image/png;base64,{fig.b64}' alt='{esc(fig.alt)}'>"
            f"<figcaption>{esc(fig.caption)}</figcaption></figure>{more}")


def section(sid: str, title: str, body: str, intro: str = "") -> tuple[str, str, str]:
    """(anchor id, title, HTML) of one report section."""
    text = f"<p>{esc(intro)}</p>" if intro else ""
    return sid, title, f"<section id='{esc(sid)}'><h2>{esc(title)}</h2>{text}{body}</section>"


def generated_at() -> str:
    """UTC time of rendering, or $SOURCE_DATE_EPOCH when set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    t = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch and epoch.isdigit() else dt.datetime.now(dt.timezone.utc)
    return t.isoformat(timespec="seconds")


def timestamp_line() -> str:
    return f"<p class='generated'>Generated at {esc(generated_at())}</p>{TIMESTAMP_MARK}"


def strip_timestamp(text: str) -> str:
    """The page without its generated-at line (for comparing two renders)."""
    return "\n".join(line for line in text.splitlines() if TIMESTAMP_MARK not in line)


def page(title: str, header: str, sections: list[tuple[str, str, str]], toc: bool = True) -> str:
    """A complete self-contained HTML document; the timestamp is on a line of its own."""
    nav = ""
    if toc and sections:
        nav = "<nav class='toc' aria-label='Sections'>" + " ".join(f"<a href='#{esc(s)}'>{esc(t)}</a>" for s, t, _ in sections) + "</nav>"
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'>",
        "<head>",
        "<meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body><main>",
        header,
        timestamp_line(),
        nav,
        *[body for _, _, body in sections],
        "</main></body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
