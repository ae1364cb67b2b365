"""The README's generated parts from project.yml: the commands, workflows
and assets (weasel's own `spacy project document`, between its markers) and
the vars tables, one per group of vars, from project.yml's vars and the
comments above them.

The vars tables are ours because weasel documents commands, workflows and
assets but not vars, and a var's meaning lives in the comment above it, which
a YAML parser drops. project.yml groups its vars by the workflow that reads
them, each group headed by a comment of the form `# === Title ===`.
tests/test_documented_commands.py renders the README and fails if it
differs, so a changed command or var shows up. The README's results table is
the measuring harness's (`spacy project run render benchmarks`); rendering
here leaves it as it is.
"""

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

from weasel.cli.document import project_document

from .markdown import replace_between

VARS_START = "<!-- VARS: AUTO-GENERATED FROM project.yml START (do not remove) -->"
VARS_END = "<!-- VARS: AUTO-GENERATED FROM project.yml END (do not remove) -->"
GROUP_HEADER = re.compile(r"^=== (.+) ===$")


@dataclass
class VarGroup:
    """The vars under one `# === Title ===` comment: (name, default as
    written, comment) of each, in order."""

    title: str
    variables: List[Tuple[str, str, str]] = field(default_factory=list)


def documented_var_groups(project_yml: str) -> List[VarGroup]:
    """project.yml's vars by group, in order. Every var needs a comment of its
    own and a group above it: either missing is an error, not a blank."""
    lines = re.split(r"(?m)^vars:\n", project_yml, maxsplit=1)[1].splitlines()
    groups: List[VarGroup] = []
    comment: List[str] = []
    for line in lines:
        if line and not line.startswith(" "):
            break  # the next top-level key
        stripped = line.strip()
        header = GROUP_HEADER.match(stripped[1:].strip()) if stripped.startswith("#") else None
        if header:
            groups.append(VarGroup(header.group(1)))
            comment = []
        elif stripped.startswith("#"):
            comment.append(stripped[1:].strip())
        elif stripped:
            match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):\s*(.*)$", stripped)
            if not match:
                raise ValueError(f"cannot read the var line {line!r}")
            if not comment:
                raise ValueError(f"var {match.group(1)} has no comment above it in project.yml")
            if not groups:
                raise ValueError(f"var {match.group(1)} comes before the first '# === Title ===' group header")
            groups[-1].variables.append((match.group(1), match.group(2), " ".join(comment)))
            comment = []
    return groups


def vars_tables(project_yml: str) -> str:
    """A heading and a table per group of vars."""
    parts = []
    for group in documented_var_groups(project_yml):
        rows = [f"**{group.title}**", "", "| Var | Default | Meaning |", "|---|---|---|"]
        for name, default, meaning in group.variables:
            value = default[1:-1] if default[:1] == default[-1:] == '"' else default
            shown = f"`{value}`" if value else '`""`'
            escaped = meaning.replace("|", "&#124;").replace("<", "&lt;").replace(">", "&gt;")
            rows.append(f"| `{name}` | {shown} | {escaped} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def render_readme(readme_text: str, project_dir: Path) -> str:
    """The README with its generated parts rendered afresh from the
    project.yml in project_dir."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "README.md"
        copy.write_text(readme_text, encoding="utf8")
        project_document(project_dir, copy)
        text = copy.read_text(encoding="utf8")
    project_yml = (project_dir / "project.yml").read_text(encoding="utf8")
    return replace_between(text, VARS_START, VARS_END, vars_tables(project_yml))
