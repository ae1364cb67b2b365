"""Render the README's generated parts from project.yml (weasel's tables of
commands, workflows and assets, and the vars tables): conll_ner/readme.py.
"""

from pathlib import Path

import typer
from wasabi import msg

from conll_ner.readme import render_readme

PROJECT_DIR = Path(__file__).resolve().parent.parent


def main(
    readme: Path = typer.Argument(PROJECT_DIR / "README.md", help="The README to update in place"),
    check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 if the README is not current"),
) -> None:
    """Re-render the README's generated parts (or check that they are current)."""
    current = readme.read_text(encoding="utf8")
    rendered = render_readme(current, PROJECT_DIR)
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
