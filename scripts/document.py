"""Render the README's generated parts from project.yml: the commands,
workflows and assets (weasel's own `spacy project document`, between its
markers) and the vars table from project.yml's vars and the comment above
each.

The vars table is ours because weasel documents commands, workflows and
assets but not vars, and a var's meaning lives in the comment above it, which
a YAML parser drops. tests/test_documented_commands.py renders both and fails
if the README differs, so a changed command or var shows up. The README's
results table is the measuring harness's, rendered from its results files
(`spacy project run render benchmarks`); this leaves it as it is.
"""

import re
import tempfile
from pathlib import Path
from typing import List, Tuple

import typer
from wasabi import msg
from weasel.cli.document import project_document

from conll_ner.markdown import replace_between

PROJECT_DIR = Path(__file__).resolve().parent.parent

VARS_START = "<!-- VARS: AUTO-GENERATED FROM project.yml START (do not remove) -->"
VARS_END = "<!-- VARS: AUTO-GENERATED FROM project.yml END (do not remove) -->"


def documented_vars(project_yml: str) -> List[Tuple[str, str, str]]:
    """(name, default as written, comment) of each var, in order. Every var
    needs a comment of its own: a var without one is an error, not a blank."""
    lines = re.split(r"(?m)^vars:\n", project_yml, maxsplit=1)[1].splitlines()
    found, comment = [], []
    for line in lines:
        if line and not line.startswith(" "):
            break  # the next top-level key
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped[1:].strip())
        elif stripped:
            match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):\s*(.*)$", stripped)
            if not match:
                raise ValueError(f"cannot read the var line {line!r}")
            if not comment:
                raise ValueError(f"var {match.group(1)} has no comment above it in project.yml")
            found.append((match.group(1), match.group(2), " ".join(comment)))
            comment = []
    return found


def vars_table(project_yml: str) -> str:
    rows = ["| Var | Default | Meaning |", "|---|---|---|"]
    for name, default, meaning in documented_vars(project_yml):
        value = default[1:-1] if default[:1] == default[-1:] == '"' else default
        shown = f"`{value}`" if value else '`""`'
        rows.append(
            f"| `{name}` | {shown} | {meaning.replace('|', '&#124;').replace('<', '&lt;').replace('>', '&gt;')} |"
        )
    return "\n".join(rows)


def render(readme_text: str, project_dir: Path = PROJECT_DIR) -> str:
    """The README with its generated parts rendered afresh."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "README.md"
        copy.write_text(readme_text, encoding="utf8")
        project_document(project_dir, copy)
        text = copy.read_text(encoding="utf8")
    project_yml = (project_dir / "project.yml").read_text(encoding="utf8")
    return replace_between(text, VARS_START, VARS_END, vars_table(project_yml))


def main(
    readme: Path = typer.Argument(PROJECT_DIR / "README.md", help="The README to update in place"),
    check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 if the README is not current"),
) -> None:
    """Re-render the README's generated parts (or check that they are current)."""
    current = readme.read_text(encoding="utf8")
    rendered = render(current)
    if check:
        if rendered != current:
            msg.fail(f"{readme} is not current: run `spacy project run document`", exits=1)
        msg.good(f"{readme} is current")
    elif rendered != current:
        readme.write_text(rendered, encoding="utf8")
        msg.good(f"Rendered {readme}")
    else:
        msg.good(f"{readme} was already current")


if __name__ == "__main__":
    typer.run(main)
