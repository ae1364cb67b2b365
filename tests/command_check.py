"""Check the commands the project shows a user, as written, with the
installed versions: the shell lines of the README's and docs' `bash` blocks
and the commands the project's messages suggest (string literals in
scripts/, conll_ner/, project.yml's help texts and comments, the
requirements files' comments; benchmarks/tests checks the measuring
harness's own the same way), and project.yml's script lines.

Each command is checked by its kind, without running anything:

- `spacy project run ...`: with `--dry` (weasel then only prints the
  scripts), so a usage error or an unknown command fails; every `--vars.X`
  must be a var of the project.yml of the folder it names (the project's,
  or the harness's in benchmarks/), which weasel itself does not check;
- any other `spacy ...` and `python scripts/X.py ...`, `python
  benchmarks/X.py ...`: with `--help` appended, so an unknown command or
  option fails (click parses every option before it answers --help);
- `python -m M`: M is importable; `python -c CODE`: CODE compiles;
- `pip install`: `-r FILE` names an existing file, the rest are known
  options, requirements or wheel paths;
- `curl` (the serve step's API): the URL is the server's default address
  and a route of its application with that method (POST with a body), and
  a JSON body is one the API takes.

Any other kind of command is a problem, so nothing slips through unchecked.
The spaCy and script invocations run in one child process started in a copy
of the project (CliRunner for spaCy's CLI, runpy for the scripts), so that a
default project folder is that copy and one import of spaCy serves them all.
"""

import ast
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
# What a check needs of the project: the dry runs read project.yml, --help
# imports the scripts and benchmark modules
COPIED = ["project.yml", "configs", "scripts", "benchmarks"]
SOURCE_DIRS = ["scripts", "conll_ner"]
# pip options a documented install may use
PIP_OPTIONS = {"-q", "--quiet", "-U", "--upgrade", "--no-deps", "-e", "--editable", "--dry-run"}
PIP_OPTIONS_WITH_VALUE = {"--index-url", "--extra-index-url", "-i"}
PLACEHOLDER = "PLACEHOLDER"
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# Where a message suggests a command: backticked, or plain text up to the end
# of its clause
COMMAND_START = re.compile(r"(spacy project run|pip install|python (?:scripts|benchmarks)/\S+\.py)")


@dataclass
class Command:
    """One command to check and where it was found (file:line)."""

    where: str
    text: str
    tokens: List[str] = field(default_factory=list)


# -- finding the commands ------------------------------------------------------


def fenced_blocks(text: str) -> Iterator[Tuple[int, str, str]]:
    """(first line number, language, body) of each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if match:
            start, language = i + 1, match.group(1)
            end = next((j for j in range(start, len(lines)) if lines[j].strip() == "```"), len(lines))
            yield start + 1, language, "\n".join(lines[start:end])
            i = end + 1
        else:
            i += 1


def substitutions(line: str) -> List[Tuple[int, int]]:
    """Spans of the `$(...)` command substitutions of a shell line, nested
    parentheses and quotes taken into account."""
    spans, i = [], 0
    while True:
        start = line.find("$(", i)
        if start < 0:
            return spans
        depth, quote, j = 0, "", start + 1
        while j < len(line):
            char = line[j]
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        spans.append((start, j + 1))
        i = j + 1


def split_shell_line(line: str, evaluate: bool = True) -> Tuple[List[List[str]], List[str], List[str]]:
    """A shell line's commands (split at &&, ||, ;), as tokens, with its
    comment dropped; `$(...)` becomes its output where it can be evaluated
    (see `substitute`), else PLACEHOLDER. Returns the commands, the
    substitutions' inner commands (checked as commands of their own) and
    problems (pipes, redirections: not what a documented command should need)."""
    inner, values = [], []
    for number, (start, end) in enumerate(reversed(substitutions(line))):
        code = line[start + 2 : end - 1]
        inner.append(code)
        values.append(substitute(code) if evaluate else None)
        line = line[:start] + f"__SUBSTITUTION_{number}__" + line[end:]
    lexer = shlex.shlex(line, posix=True, punctuation_chars="&|;<>")
    lexer.whitespace_split = True
    commands, current, problems = [], [], []
    for token in lexer:
        if token in ("&&", "||", ";"):
            commands.append(current)
            current = []
        elif token and set(token) <= set("&|;<>"):
            problems.append(f"unsupported shell operator {token!r}")
        else:
            for number, value in enumerate(values):
                token = token.replace(f"__SUBSTITUTION_{number}__", value if value is not None else PLACEHOLDER)
            current.append(token)
    commands.append(current)
    return [c for c in commands if c], inner, problems


def substitute(code: str) -> Optional[str]:
    """The output of a `$(python -c ...)` substitution, where every module it
    imports is installed (on a machine without them it stays a placeholder;
    its code is still compiled). None if it cannot be evaluated here."""
    tokens = shlex.split(code)
    if tokens[:2] != ["python", "-c"] or len(tokens) != 3:
        return None
    if not all(importlib.util.find_spec(name) for name in imported_modules(tokens[2])):
        return None
    result = subprocess.run([sys.executable, "-c", tokens[2]], capture_output=True, text=True, timeout=120)
    return result.stdout.strip() if result.returncode == 0 else None


def imported_modules(code: str) -> List[str]:
    names = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module.split(".")[0])
    return names


def logical_lines(body: str, first_line: int) -> Iterator[Tuple[int, str]]:
    """The lines of a shell block with `\\` continuations joined."""
    pending, start = "", first_line
    for offset, raw in enumerate(body.splitlines()):
        if not pending:
            start = first_line + offset
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line, pending = pending + raw, ""
        if line.strip():
            yield start, line
    if pending.strip():
        yield start, pending


def documented_commands(paths: List[Path]) -> Tuple[List[Command], List[str]]:
    """The commands of the `bash` blocks of these Markdown files, and the
    problems found while reading them (a fenced block without a language, a
    python block that does not compile)."""
    commands, problems = [], []
    for path in paths:
        name = path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path
        for first, language, body in fenced_blocks(path.read_text(encoding="utf8")):
            if not language:
                problems.append(f"{name}:{first - 1}: a fenced block without a language (bash, python, text...)")
            elif language == "python":
                try:
                    compile(body, str(name), "exec")
                except SyntaxError as err:
                    problems.append(f"{name}:{first}: python block does not compile: {err}")
            elif language in ("bash", "sh", "shell", "console"):
                for number, line in logical_lines(body, first):
                    commands.extend(shell_commands(f"{name}:{number}", line, problems))
    return commands, problems


def shell_commands(where: str, line: str, problems: List[str]) -> List[Command]:
    try:
        split, inner, line_problems = split_shell_line(line)
    except ValueError as err:  # unbalanced quotes
        problems.append(f"{where}: {err}: {line}")
        return []
    problems.extend(f"{where}: {problem}: {line}" for problem in line_problems)
    found = [Command(where, line, tokens) for tokens in split]
    for code in inner:
        found.extend(shell_commands(f"{where} $(...)", code, problems))
    return found


def message_commands(text: str, where: str) -> List[Command]:
    """Commands suggested in a message: each `spacy project run`, `pip
    install` or `python scripts/...` up to its closing backtick when it is
    backticked, else up to the end of its clause. Placeholders (<name>,
    {value}, ${vars.x}) stand for any value."""
    found = []
    text = text.replace("\\\n", " ")  # a command continued on the next line
    for match in COMMAND_START.finditer(text):
        start = match.start()
        if start > 0 and text[start - 1] == "`":
            end = text.find("`", start)
        else:
            # a clause ends at a bracket, comma, semicolon, line end or a full stop
            # (not the project folder, a lone `.`)
            ends = [m.start() for m in re.finditer(r"[()`;,\n]|(?<=\S)\.(?:\s|$)", text[start:])]
            end = start + ends[0] if ends else len(text)
        command = " ".join(text[start : end if end >= 0 else len(text)].split())
        command = re.sub(r"\$\{[^}]*\}|\{[^}]*\}|<[^>]*>", PLACEHOLDER, command).rstrip(".:")
        try:
            tokens = shlex.split(command, comments=True)
        except ValueError:
            tokens = command.split()
        if tokens[:2] == ["pip", "install"] and all(token.startswith("-") for token in tokens[2:]):
            continue  # prose about pip ("checked with pip install --dry-run"), not a command to run
        found.append(Command(where, command, tokens))
    return found


def string_constants(path: Path) -> Iterator[Tuple[int, str]]:
    """Every string literal of a Python file (f-strings with their
    placeholders as `{}`), with its line."""
    tree = ast.parse(path.read_text(encoding="utf8"))
    # an f-string's literal parts are Constants of their own: read them whole
    parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
            yield node.lineno, text
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            yield node.lineno, node.value


def suggested_commands(
    project_dir: Path = PROJECT_DIR, source_dirs: List[str] = SOURCE_DIRS, project: str = "."
) -> List[Command]:
    """Every command the messages, docstrings, help texts and comments of
    these source folders and of the project.yml and requirements files in
    `project` (a folder of project_dir) suggest, and the script lines of that
    project.yml's commands."""
    found = []
    for folder in source_dirs:
        for path in sorted((project_dir / folder).rglob("*.py")):
            if {"work", "tests"} & set(path.relative_to(project_dir).parts):
                continue
            for line, text in string_constants(path):
                found += message_commands(text, f"{path.relative_to(project_dir)}:{line}")
    project_yml = project_dir / project / "project.yml"
    where = project_yml.relative_to(project_dir)
    for command in yaml.safe_load(project_yml.read_text(encoding="utf8")).get("commands", []):
        found += message_commands(command.get("help", ""), f"{where}: help of {command['name']}")
        # what the workflow itself runs: a script line with an option its script lacks fails here, not mid-run
        for line in command.get("script", []):
            found += message_commands(line, f"{where}: script of {command['name']}")
    files = [project_yml] + sorted((project_dir / project).glob("requirements*.txt"))
    for path in files:
        # a comment may wrap a command over two lines
        comments, first = [], 0
        for number, line in enumerate(path.read_text(encoding="utf8").splitlines() + [""], 1):
            comment = line.strip()[1:].strip() if line.strip().startswith("#") else None
            if comment is not None:
                first = first or number
                comments.append(comment)
            elif comments:
                found += message_commands(" ".join(comments), f"{path.relative_to(project_dir)}:{first}")
                comments, first = [], 0
    return found


# -- checking them -------------------------------------------------------------


def project_vars(project_dir: Path) -> List[str]:
    return list(yaml.safe_load((project_dir / "project.yml").read_text(encoding="utf8"))["vars"])


def check_commands(commands: List[Command], project_dir: Path = PROJECT_DIR) -> List[str]:
    """Problems of these commands, each with where it was found; an empty
    list if every one works as written."""
    problems: List[str] = []
    invocations: List[Tuple[Command, str, List[str]]] = []

    def report(command: Command, reason: str) -> None:
        problems.append(f"{command.where}: {reason}: {command.text}")

    for command in commands:
        tokens = list(command.tokens)
        while tokens and ENV_ASSIGNMENT.match(tokens[0]):
            tokens.pop(0)
        if tokens[:2] == ["python", "-m"] and tokens[2:3] == ["spacy"]:
            tokens = ["spacy"] + tokens[3:]
        if tokens[:3] == ["spacy", "project", "run"]:
            # the project folder after the command's name (weasel's default: the current one)
            folder = tokens[4] if len(tokens) > 4 and not tokens[4].startswith("-") else "."
            known_vars = (
                set(project_vars(project_dir / folder)) if (project_dir / folder / "project.yml").is_file() else set()
            )
            for token in tokens[3:]:
                if token.startswith("--vars."):
                    name = token[len("--vars.") :].split("=", 1)[0]
                    if name not in known_vars:
                        report(command, f"--vars.{name} is not a var of {Path(folder) / 'project.yml'}")
            invocations.append((command, "spacy", tokens[1:] + ["--dry"]))
        elif tokens[:1] == ["spacy"]:
            invocations.append((command, "spacy", tokens[1:] + ["--help"]))
        elif tokens[:1] == ["python"] and len(tokens) > 1 and re.match(r"^(scripts|benchmarks)/\w+\.py$", tokens[1]):
            if not (project_dir / tokens[1]).is_file():
                report(command, f"{tokens[1]} does not exist")
            else:
                invocations.append((command, "script", tokens[1:] + ["--help"]))
        elif tokens[:2] == ["python", "-m"] and len(tokens) > 2:
            if importlib.util.find_spec(tokens[2]) is None:
                report(command, f"no module {tokens[2]}")
        elif tokens[:2] == ["python", "-c"] and len(tokens) == 3:
            try:
                compile(tokens[2], command.where, "exec")
            except SyntaxError as err:
                report(command, f"the code does not compile ({err})")
        elif tokens[:2] == ["pip", "install"]:
            problems += [
                f"{command.where}: {reason}: {command.text}" for reason in pip_problems(tokens[2:], project_dir)
            ]
        elif tokens[:1] == ["curl"]:
            problems += [f"{command.where}: {reason}: {command.text}" for reason in curl_problems(tokens[1:])]
        else:
            report(command, "not a kind of command this check knows")
    if invocations:
        # each distinct invocation runs once
        distinct = list(dict.fromkeys((kind, tuple(argv)) for _, kind, argv in invocations))
        outcomes = dict(zip(distinct, run_invocations([(kind, list(argv)) for kind, argv in distinct], project_dir)))
        for command, kind, argv in invocations:
            code, output = outcomes[kind, tuple(argv)]
            if code != 0:
                tail = " | ".join(line.strip() for line in output.strip().splitlines()[-4:])
                problems.append(f"{command.where}: exit {code} ({' '.join(argv)}): {tail}: {command.text}")
    return problems


# curl options a documented call may use, and those that take a value
CURL_OPTIONS = {"-s", "--silent", "-i", "--include", "-f", "--fail"}
CURL_OPTIONS_WITH_VALUE = {"-H", "--header", "-d", "--data", "--data-binary", "-X", "--request", "-o", "--output"}


def curl_problems(arguments: List[str]) -> List[str]:
    """A call of the serve step's API: its default address, a route of the
    application with the call's method, and a JSON body the API takes."""
    from urllib.parse import urlsplit

    from conll_ner.serving.api import EntsRequest
    from conll_ner.serving.app import create_app
    from conll_ner.serving.settings import ServeSettings

    problems, urls, body, method, i = [], [], None, None, 0
    while i < len(arguments):
        argument = arguments[i]
        if argument in CURL_OPTIONS_WITH_VALUE and i + 1 < len(arguments):
            value = arguments[i + 1]
            if argument in ("-d", "--data", "--data-binary"):
                body = value
            elif argument in ("-X", "--request"):
                method = value
            i += 2
            continue
        if argument.startswith("-"):
            if argument not in CURL_OPTIONS:
                problems.append(f"curl option {argument} is not one this check knows")
        else:
            urls.append(argument)
        i += 1
    if len(urls) != 1:
        return problems + [f"curl of {len(urls)} URLs, not one"]
    defaults = ServeSettings(model="")
    url = urlsplit(urls[0])
    if (url.scheme, url.hostname, url.port) != ("http", defaults.host, defaults.port):
        problems.append(f"{urls[0]} is not the server's default address, http://{defaults.host}:{defaults.port}/")
    method = method or ("POST" if body is not None else "GET")
    routes = {(route.path, verb) for route in create_app(defaults).routes for verb in getattr(route, "methods", ())}
    if (url.path or "/", method) not in routes:
        problems.append(f"the server has no {method} {url.path or '/'}")
    if body is not None:
        try:
            EntsRequest.model_validate(json.loads(body))
        except ValueError as err:
            problems.append(f"the API does not take this body ({err})")
    return problems


def pip_problems(arguments: List[str], project_dir: Path) -> List[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    problems, i, targets = [], 0, 0
    while i < len(arguments):
        argument = arguments[i]
        if argument == "-r":
            if i + 1 >= len(arguments) or not (project_dir / arguments[i + 1]).is_file():
                problems.append(f"-r {arguments[i + 1] if i + 1 < len(arguments) else ''}: no such file")
            i, targets = i + 2, targets + 1
            continue
        if argument in PIP_OPTIONS_WITH_VALUE:
            i += 2
            continue
        if argument.startswith("-"):
            if argument not in PIP_OPTIONS:
                problems.append(f"pip option {argument} is not one this check knows")
        elif argument.endswith(".whl") or argument == ".":
            # a wheel the project builds (a glob), or the project itself
            targets += 1
        else:
            try:
                Requirement(argument)
                targets += 1
            except InvalidRequirement as err:
                problems.append(f"{argument!r} is not a requirement ({err})")
        i += 1
    if not targets:
        problems.append("pip install of nothing")
    return problems


def copy_for_checks(target: Path, project_dir: Path = PROJECT_DIR) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = project_dir / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "work", "*.png"))
        elif source.is_file():
            shutil.copy(source, target / name)
    for path in project_dir.glob("requirements*.txt"):
        shutil.copy(path, target / path.name)
    return target


def run_invocations(invocations: List[Tuple[str, List[str]]], project_dir: Path) -> List[Tuple[int, str]]:
    """Exit codes and output of spaCy CLI and script invocations, run by
    this module in a child process whose working directory is project_dir."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--invoke"],
        input=json.dumps(invocations),
        capture_output=True,
        text=True,
        cwd=project_dir,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the invocation runner failed: {result.stderr[-3000:]}")
    return [tuple(item) for item in json.loads(result.stdout.strip().splitlines()[-1])]


def invoke_all(invocations: List[Tuple[str, List[str]]]) -> List[Tuple[int, str]]:
    """In the child: spaCy's CLI through click's CliRunner (the same typer
    app and parser as the `spacy` command), scripts through runpy as
    `python scripts/X.py` would run them."""
    import contextlib
    import io
    import runpy
    import traceback

    import typer
    from click.testing import CliRunner
    from spacy.cli import app

    command = typer.main.get_command(app)
    results = []
    for kind, argv in invocations:
        if kind == "spacy":
            outcome = CliRunner().invoke(command, argv, prog_name="spacy")
            output = outcome.output + (
                "".join(traceback.format_exception(outcome.exception))
                if outcome.exception and not isinstance(outcome.exception, SystemExit)
                else ""
            )
            results.append((outcome.exit_code, output))
            continue
        buffer, code, saved, saved_path = io.StringIO(), 0, list(sys.argv), list(sys.path)
        sys.argv = list(argv)
        # as `python X.py` runs it: the script's folder first on the import path
        sys.path.insert(0, str(Path(argv[0]).resolve().parent))
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except Exception:
            code, _ = 1, buffer.write(traceback.format_exc())
        finally:
            sys.argv, sys.path[:] = saved, saved_path
        results.append((code, buffer.getvalue()))
    return results


if __name__ == "__main__" and sys.argv[1:] == ["--invoke"]:
    outcome = invoke_all(json.loads(sys.stdin.read()))
    print(json.dumps(outcome))
