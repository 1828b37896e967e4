"""Result files that read the same on any machine: no absolute paths, run folders named by what ran.

A committed study (docs/results/<study>) is data other people read; where it was computed is not part of it.
``portable_text`` cuts the absolute paths out of a result file's text, ``clean_study`` rewrites a collected study in
place (``python -m infomatch.tasks.results clean <study>``), and ``collect`` copies every file through the former.
"""

from __future__ import annotations

import re
from pathlib import Path

from infomatch.utils.errors import OutputError

# an absolute path of at least two parts, where a path starts in YAML, JSON, CSV, Markdown or an override
ABSOLUTE_PATH = re.compile(r"(?:^|(?<=[\s\"'=\[(,`]))/(?:[^\s\"'/,\])`]+/)+[^\s\"'/,\])`]*", re.M)
# how earlier run names said when they ran rather than what: cpu_study_im_seed0_session8
SESSION_SUFFIX = re.compile(r"_session\d+$")
TEXT_SUFFIXES = (".json", ".yaml", ".md", ".csv")


def _project_part(path: str) -> str:
    """From outputs/ on for the files of runs and evaluations; the last part for anything else (a data root)."""
    if "/outputs/" in path:
        return path[path.index("/outputs/") + 1:]
    return path.rstrip("/").rsplit("/", 1)[-1]


def portable_text(text: str) -> str:
    """``text`` with every absolute path cut to the part that names something of the project."""
    return ABSOLUTE_PATH.sub(lambda match: _project_part(match.group(0)), text)


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it (as users pass it, and as a study's files
    keep it), else as given; ``collect`` cuts what remains absolute."""
    absolute = path.absolute()
    return str(absolute.relative_to(Path.cwd())) if absolute.is_relative_to(Path.cwd()) else str(path)


def descriptive_name(run_name: str) -> str:
    """A run folder's name without a suffix saying when it ran."""
    return SESSION_SUFFIX.sub("", run_name)


def clean_study(study: Path) -> tuple[list[Path], dict[str, str]]:
    """Rewrite ``study`` in place: absolute paths cut (``portable_text``) and run folders renamed to their
    ``descriptive_name``, with every reference to them in the study's files. Returns (rewritten files, renames)."""
    runs = study / "runs"
    names = sorted(path.name for path in runs.iterdir() if path.is_dir()) if runs.is_dir() else []
    renames = {name: descriptive_name(name) for name in names if descriptive_name(name) != name}
    clashes = sorted(new for new in renames.values() if new in names or list(renames.values()).count(new) > 1)
    if clashes:
        raise OutputError(f"{runs}: renaming would merge run folders into {', '.join(sorted(set(clashes)))}; "
                          "rename those by hand first")
    rewritten = [file for file in sorted(study.rglob("*"))
                 if file.is_file() and file.suffix in TEXT_SUFFIXES and rewrite_references(file, renames)]
    for old, new in renames.items():
        (runs / old).rename(runs / new)
    return rewritten, renames


def rewrite_references(file: Path, renames: dict[str, str], portable: bool = True) -> bool:
    """Point ``file``'s run names at their new ones and, with ``portable``, cut its absolute paths (a result file;
    a docs page keeps its example paths); True when it changed."""
    text = file.read_text()
    changed = portable_text(text) if portable else text
    if renames:  # longest first, so that a name is never replaced inside a longer one
        alternatives = "|".join(map(re.escape, sorted(renames, key=len, reverse=True)))
        old_names = re.compile(rf"(?<![\w])(?:{alternatives})(?![\w])")
        changed = old_names.sub(lambda match: renames[match.group(0)], changed)
    if changed == text:
        return False
    file.write_text(changed)
    return True
