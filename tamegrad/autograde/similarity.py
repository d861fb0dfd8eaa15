"""Similarity between submissions: ``tamegrad similarity ASSIGNMENT`` ranks the pairs of students
whose answer code is alike, with the matching regions highlighted side by side.

The comparison is copydetect's (Ahmed's winnowing detector, after Schleimer, Wilkerson and Aiken,
SIGMOD 2003): each answer is tokenised with pygments, names become placeholders (so renaming
variables does not hide a copy), k-grams of tokens are hashed and winnowed into fingerprints, and
a pair's similarity is the fraction of one side's fingerprints found in the other (order-free, so
reordering functions does not hide a copy either). Only the code inside the students' answer
cells (nbgrader's solution cells) is compared, and the release's own code in those cells (the
stubs, signatures and docstrings every student starts from) is given to copydetect as
boilerplate, whose fingerprints never count. copydetect's own report loads Bootstrap from a CDN;
this module writes its own page, offline. Nothing of the instructor's solution or hidden tests is
read: the inputs are the submissions and the student version of the notebook.
"""

from __future__ import annotations

import html
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

NOISE = 12  # k-gram length in filtered characters: below it, a match is noise (course answers are short)
GUARANTEE = 16  # a match this long is always found (window = GUARANTEE - NOISE + 1)
THRESHOLD = 0.6  # a pair is listed when either side has this fraction of its fingerprints in the other


@dataclass(frozen=True)
class Pair:
    first: str
    second: str
    first_share: float  # fraction of first's fingerprints found in second
    second_share: float
    first_html: str  # the code, HTML-escaped, matching regions in <mark>
    second_html: str

    @property
    def score(self) -> float:
        return max(self.first_share, self.second_share)


def answer_code(nb) -> str:
    """The code of a notebook's answer cells (nbgrader ``solution`` code cells that are not tests)."""
    chunks = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            chunks.append(cell.source.strip("\n"))
    return "\n\n".join(chunks) + "\n"


def compare(answers: dict[str, str], release_code: str, threshold: float = THRESHOLD) -> list[Pair]:
    """Every pair of students whose answers share more than ``threshold`` of their fingerprints,
    most similar first."""
    from copydetect import CopyDetector

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "boilerplate").mkdir()
        (root / "boilerplate" / "release.py").write_text(release_code, encoding="utf-8")
        detector = CopyDetector(
            noise_t=NOISE,
            guarantee_t=GUARANTEE,
            display_t=threshold,
            extensions=["py"],
            autoopen=False,
            silent=True,
            force_language="python",
        )
        detector.add_file(str(root / "boilerplate" / "release.py"), type="boilerplate")
        names = {}
        for i, (student, code) in enumerate(sorted(answers.items())):
            path = root / f"{i:05d}.py"  # not the student id: ids may hold any character
            path.write_text(code, encoding="utf-8")
            names[str(path)] = student
            detector.add_file(str(path))
        detector.run()
        pairs = [
            Pair(names[a], names[b], float(sa), float(sb), _mark(ha), _mark(hb))
            for sa, sb, a, b, ha, hb, _ in detector.get_copied_code_list()
        ]
    return sorted(pairs, key=lambda p: -p.score)


def _mark(highlighted: str) -> str:
    """copydetect escapes the code and wraps matches in spans; use <mark> instead."""
    for cls in ("highlight-red", "highlight-green"):
        highlighted = highlighted.replace(f"<span class='{cls}'>", "<mark>")
    return highlighted.replace("</span>", "</mark>")


def collect(submitted: Path, release: Path, assignment: str) -> tuple[dict[str, str], str]:
    """Each student's answer code (all notebooks of the assignment), and the release's."""
    notebooks = sorted(p.name for p in (release / assignment).glob("*.ipynb"))
    release_code = "".join(answer_code(nbformat.read(release / assignment / n, as_version=4)) for n in notebooks)
    answers = {}
    for folder in sorted(p for p in submitted.iterdir() if (p / assignment).is_dir() and not p.is_symlink()):
        parts = []
        for n in notebooks:
            path = folder / assignment / n
            if path.is_file() and not path.is_symlink():
                try:
                    parts.append(answer_code(nbformat.read(path, as_version=4)))
                except Exception:  # an unreadable notebook has nothing to compare
                    continue
        if parts:
            answers[folder.name] = "".join(parts)
    return answers, release_code


def render(assignment: str, pairs: list[Pair], n_students: int, threshold: float) -> str:
    e = html.escape
    rows = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(assignment)}: similar submissions</title>",
        "<style>body{font-family:sans-serif;margin:2rem}table{border-collapse:collapse;width:100%}"
        "td,th{border:1px solid #ccc;padding:.3rem .6rem;vertical-align:top;text-align:left}"
        "pre{white-space:pre-wrap;font-size:.85rem;margin:0}mark{background:#ffd27f}"
        ".pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem}</style></head><body>",
        f"<h1>{e(assignment)}: similar submissions</h1>",
        f"<p>{n_students} submissions compared on their answer cells only (the release's stubs do not "
        f"count); {len(pairs)} {'pair shares' if len(pairs) == 1 else 'pairs share'} at least "
        f"{threshold:.0%} of one side's fingerprints. A high "
        "score is a reason to look, not a verdict: short answers to the same task can coincide.</p>",
        "<table><tr><th>#</th><th>students</th><th>share of first in second</th><th>share of second in first</th></tr>",
    ]
    for i, p in enumerate(pairs, 1):
        rows.append(
            f"<tr><td><a href='#pair-{i}'>{i}</a></td><td>{e(p.first)} ~ {e(p.second)}</td>"
            f"<td>{p.first_share:.0%}</td><td>{p.second_share:.0%}</td></tr>"
        )
    rows.append("</table>")
    for i, p in enumerate(pairs, 1):
        rows.append(f"<h2 id='pair-{i}'>{i}. {e(p.first)} ~ {e(p.second)} ({p.score:.0%})</h2>")
        rows.append(
            f"<div class='pair'><div><h3>{e(p.first)}</h3><pre>{p.first_html}</pre></div>"
            f"<div><h3>{e(p.second)}</h3><pre>{p.second_html}</pre></div></div>"
        )
    rows.append("</body></html>")
    return "\n".join(rows)


def report(submitted: Path, release: Path, assignment: str, out: Path, threshold: float = THRESHOLD) -> Path:
    """Compare the submissions of ``assignment`` and write ``out/<assignment>-similarity.html``."""
    answers, release_code = collect(submitted, release, assignment)
    pairs = compare(answers, release_code, threshold) if len(answers) > 1 else []
    out.mkdir(parents=True, exist_ok=True)
    page = out / f"{assignment}-similarity.html"
    page.write_text(render(assignment, pairs, len(answers), threshold), encoding="utf-8")
    return page
