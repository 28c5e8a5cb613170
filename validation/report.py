"""The reproduce report: ``report.md`` and a self-contained ``report.html`` (issue 14 item 5).

Both open with the **map of both papers** (:mod:`validation.paper_map`): every figure, table and
headline claim of the two papers → pderl's numbers and figures → status, with the reason of every
correction next to the paper's claim, then the list of what is not covered, then each stage's section.

``report.html`` needs no network and no other file: figures are embedded as base64 PNG
(``<img src="data:image/png;base64,...">``), the style sheet is inline, and every link is an anchor
inside the page (``#fig-<name>``). Each figure's caption cites the paper figures it answers. The stage
sections are the stages' own Markdown, rendered by the small converter below (headings, paragraphs,
pipe tables, images, lists, ``**bold**``, ``_italic_``, ```code```): the package must not depend on a
Markdown library for its report, and the subset is all the stages write.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from rl.runs import atomic_write_text
from validation.paper_map import STATUS_LABELS, ResolvedItem, load_paper_map, resolve

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
_STATUS_COLOURS = {"reproduced": "#1b7f3b", "corrected": "#9a5b00", "partial": "#3b5ba5", "not_covered": "#a11"}


def figure_anchor(path: str) -> str:
    """HTML id of an embedded figure: ``figures/mm_rl_paths.png`` → ``fig-mm_rl_paths``."""
    return "fig-" + re.sub(r"[^A-Za-z0-9_-]", "-", Path(path).stem)


def _paper_refs(resolved: list[ResolvedItem], paper_map: dict) -> dict[str, list[str]]:
    """Figure path → the paper items it answers ("DSXZ Figure 2", "FX Claim (Section 6)"), for captions."""
    refs: dict[str, list[str]] = {}
    for item in resolved:
        short = paper_map["papers"][item.paper]["short"]
        for path in item.figures:
            label = f"{short} {item.item}"
            if label not in refs.setdefault(path, []):
                refs[path].append(label)
    return refs


def _pderl_cell(item: ResolvedItem, *, markdown: bool) -> str:
    """What pderl shows for an item: values (with their checks), figure links (anchors in HTML), or why
    nothing."""
    parts = []
    if item.stage is None:
        return "—"
    if not (item.stage_ran or item.values or item.figures):
        return f"stage {item.stage} not run in this report (pderl reproduce --only {item.stage})"
    parts += [f"{label}: {value}" for label, value in item.values]
    for path in item.figures:
        name = Path(path).name
        parts.append(f"[{name}]({path})" if markdown else name)
    return "; ".join(parts) if parts else f"stage {item.stage}"


def _status_text(item: ResolvedItem) -> str:
    """The status; a run whose own numbers miss the paper's target says so first (never hidden behind
    the map's status, which describes what pderl's full settings reproduce)."""
    text = STATUS_LABELS[item.status]
    if item.checks and not all(ok for _, ok in item.checks):
        text = f"target not met in this run (map: {text})"
    return text


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def map_markdown(resolved: list[ResolvedItem], paper_map: dict) -> str:
    """The map and the not-covered list as Markdown (the opening of ``report.md``)."""
    lines = ["## Map of both papers", "",
             "Every figure, table and headline claim of the two papers, what pderl shows for it, and its "
             "status (" + "; ".join(f"**{STATUS_LABELS[k]}**: {v}" for k, v in paper_map["statuses"].items())
             + ").", ""]
    for key, paper in paper_map["papers"].items():
        lines += [f"### {paper['short']}: {paper['title']}", "",
                  "| item | the paper's claim | pderl | status | reason |", "|---|---|---|---|---|"]
        for item in (r for r in resolved if r.paper == key):
            reason = item.reason + (f" {item.note}" if item.note else "")
            lines.append(f"| {_md_cell(item.item)} | {_md_cell(item.claim)} | "
                         f"{_md_cell(_pderl_cell(item, markdown=True))} | {_status_text(item)} | {_md_cell(reason)} |")
        lines.append("")
    lines += ["### Not covered", ""]
    missing = [r for r in resolved if r.status == "not_covered"]
    for item in missing:
        lines.append(f"- {paper_map['papers'][item.paper]['short']} {item.item}: {item.claim} — {item.reason}")
    if not missing:
        lines.append("- nothing")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- #
# HTML
# ----------------------------------------------------------------------------------------------- #
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;line-height:1.45;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.3em 0.5em;vertical-align:top;text-align:left}
th{background:#f3f3f3}
figure{margin:1.2em 0}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:0.9em;color:#444}
code{background:#f3f3f3;padding:0 0.2em}
.status{font-weight:600;white-space:nowrap}
"""


def _inline(text: str, figures_in_page: set[str]) -> str:
    """Escape ``text`` and apply the inline Markdown subset; links become in-page anchors or text."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w\\])_([^_\n]+?)_(?!\w)", r"<em>\1</em>", out)

    def link(match):
        label, target = match.group(1), match.group(2)
        if target in figures_in_page:
            return f'<a href="#{figure_anchor(target)}">{label}</a>'
        return label  # no external (or dangling) href: the page must work offline

    return _LINK.sub(link, out)


def _figure_html(path: str, alt: str, out_dir: Path, refs: dict[str, list[str]]) -> str:
    file = out_dir / path
    if not file.is_file():
        return f"<p><em>figure {html.escape(path)} is missing from the report folder</em></p>"
    data = base64.b64encode(file.read_bytes()).decode("ascii")
    cited = refs.get(path)
    caption = html.escape(alt or Path(path).stem)
    if cited:
        caption += " — answers " + html.escape(", ".join(cited))
    return (f'<figure id="{figure_anchor(path)}"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(alt)}"><figcaption>{caption} '
            f'(<code>{html.escape(path)}</code>)</figcaption></figure>')


def markdown_to_html(text: str, out_dir: Path, refs: dict[str, list[str]], embedded: set[str],
                     figures_in_page: set[str]) -> str:
    """Render a stage's Markdown; images are embedded once (``embedded`` collects their paths)."""
    blocks: list[str] = []
    paragraph: list[str] = []
    lines = text.splitlines()

    def flush():
        if paragraph:
            blocks.append("<p>" + " ".join(_inline(line, figures_in_page) for line in paragraph) + "</p>")
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index].rstrip()
        stripped = line.strip()
        if not stripped:
            flush()
        elif stripped.startswith("#"):
            flush()
            level = min(len(stripped) - len(stripped.lstrip("#")) + 1, 6)  # stage headings sit below h2
            blocks.append(f"<h{level}>{_inline(stripped.lstrip('#').strip(), figures_in_page)}</h{level}>")
        elif stripped.startswith("|"):
            flush()
            rows = []
            while index < len(lines) and lines[index].strip().startswith("|"):
                rows.append(lines[index].strip())
                index += 1
            index -= 1
            cells = [[c.strip() for c in re.split(r"(?<!\\)\|", row.strip("|"))] for row in rows]

            def separator(row):
                return any(row) and all(re.fullmatch(r":?-{3,}:?", c) for c in row if c)

            has_header = len(cells) > 1 and separator(cells[1])
            html_rows = []
            for number, row in enumerate(r for r in cells if not separator(r)):
                tag = "th" if number == 0 and has_header else "td"
                html_rows.append("<tr>" + "".join(f"<{tag}>{_inline(c.replace(chr(92) + '|', '|'), figures_in_page)}"
                                                  f"</{tag}>" for c in row) + "</tr>")
            blocks.append("<table>" + "".join(html_rows) + "</table>")
        elif stripped.startswith(("- ", "* ")):
            flush()
            items = []
            while index < len(lines) and lines[index].strip().startswith(("- ", "* ")):
                items.append(f"<li>{_inline(lines[index].strip()[2:], figures_in_page)}</li>")
                index += 1
            index -= 1
            blocks.append("<ul>" + "".join(items) + "</ul>")
        elif _IMAGE.search(stripped):
            flush()
            rest = stripped
            for match in _IMAGE.finditer(stripped):
                alt, path = match.group(1), match.group(2)
                if path not in embedded:
                    blocks.append(_figure_html(path, alt, out_dir, refs))
                    embedded.add(path)
                rest = rest.replace(match.group(0), "")
            if rest.strip():
                blocks.append("<p>" + _inline(rest.strip(), figures_in_page) + "</p>")
        else:
            paragraph.append(stripped)
        index += 1
    flush()
    return "\n".join(blocks)


def _map_html(resolved: list[ResolvedItem], paper_map: dict, figures_in_page: set[str]) -> str:
    parts = ['<h2 id="paper-map">Map of both papers</h2>',
             "<p>Every figure, table and headline claim of the two papers, what pderl shows for it (figure "
             "names link to the embedded figures below), and its status:</p><ul>"]
    parts += [f'<li><span class="status" style="color:{_STATUS_COLOURS[k]}">{STATUS_LABELS[k]}</span>: '
              f"{html.escape(v)}</li>" for k, v in paper_map["statuses"].items()]
    parts.append("</ul>")
    for key, paper in paper_map["papers"].items():
        parts.append(f"<h3>{html.escape(paper['short'])}: {html.escape(paper['title'])}</h3>")
        parts.append("<table><tr><th>item</th><th>the paper's claim</th><th>pderl</th><th>status</th>"
                     "<th>reason</th></tr>")
        for item in (r for r in resolved if r.paper == key):
            cell = html.escape(_pderl_cell(item, markdown=False))
            for path in item.figures:
                name = html.escape(Path(path).name)
                if path in figures_in_page:
                    cell = cell.replace(name, f'<a href="#{figure_anchor(path)}">{name}</a>', 1)
            reason = html.escape(item.reason + (f" {item.note}" if item.note else ""))
            missed = bool(item.checks) and not all(ok for _, ok in item.checks)
            colour = _STATUS_COLOURS["not_covered" if missed else item.status]
            parts.append(f'<tr id="map-{html.escape(item.id)}"><td>{html.escape(item.item)}</td>'
                         f"<td>{html.escape(item.claim)}</td><td>{cell}</td>"
                         f'<td class="status" style="color:{colour}">'
                         f"{html.escape(_status_text(item))}</td><td>{reason}</td></tr>")
        parts.append("</table>")
    missing = [r for r in resolved if r.status == "not_covered"]
    parts.append('<h3 id="not-covered">Not covered</h3><ul>')
    parts += [f"<li>{html.escape(paper_map['papers'][r.paper]['short'])} {html.escape(r.item)}: "
              f"{html.escape(r.claim)} — {html.escape(r.reason)}</li>" for r in missing] or ["<li>nothing</li>"]
    parts.append("</ul>")
    return "\n".join(parts)


def write_reports(out_dir: str | Path, results: dict, header: list[str], *, paper_map: dict | None = None) -> None:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` from the finished stages.

    Parameters
    ----------
    out_dir : path-like
        The reproduce folder (figures under ``figures/``).
    results : dict
        Stage short name → :class:`validation.stages._types.StageOutput`, in run order.
    header : list of str
        Markdown lines that open the report (title and the mode/seed/stages line).
    paper_map : dict, optional
        The loaded map (default: the packaged one).
    """
    out_dir = Path(out_dir)
    paper_map = paper_map or load_paper_map()
    metrics = {name: out.metrics for name, out in results.items()}
    figures = [f for out in results.values() for f in out.figures]
    on_disk = {f for f in figures if (out_dir / f).is_file()}
    resolved = resolve(paper_map, metrics, on_disk)
    refs = _paper_refs(resolved, paper_map)

    md = list(header) + [map_markdown(resolved, paper_map)]
    for name, output in results.items():
        md += [f"## {output.title}", "", output.report.strip(), ""]
        unreferenced = [f for f in output.figures if f"]({f})" not in output.report]
        md += [f"![{Path(f).stem}]({f})" for f in unreferenced]
        md += ["", f"_Stage `{name}` took {output.seconds:.1f} s._", ""]
    atomic_write_text(out_dir / "report.md", "\n".join(md))

    embedded: set[str] = set()
    title = html.escape(header[0].lstrip("# ").strip() if header else "pderl report")
    body = [f"<h1>{title}</h1>"]
    body += [f"<p>{_inline(line, on_disk)}</p>" for line in header[1:] if line.strip()]
    body.append(_map_html(resolved, paper_map, on_disk))
    for name, output in results.items():
        body.append(f'<h2 id="stage-{html.escape(name)}">{html.escape(output.title)}</h2>')
        body.append(markdown_to_html(output.report, out_dir, refs, embedded, on_disk))
        for path in output.figures:
            if path not in embedded:
                body.append(_figure_html(path, Path(path).stem, out_dir, refs))
                embedded.add(path)
        body.append(f"<p><em>Stage {html.escape(name)} took {output.seconds:.1f} s.</em></p>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    atomic_write_text(out_dir / "report.html", page)


__all__ = ["figure_anchor", "map_markdown", "markdown_to_html", "write_reports"]
