"""The README's results table, rendered from the same results files as
BENCHMARKS.md (benchmarks/results/results.json and results_long.json), so
that the README never retypes a measured figure (results_recipe_probes.json
gives Spanish and Dutch on the whole files). The harness writes it
between its markers in the README after every run that updates
BENCHMARKS.md, and `spacy project run render benchmarks` at any time; the
product's own `document` step renders the README's other parts and leaves
this one as it is. benchmarks/tests/test_reports.py checks that it is
current."""

import json
import shlex
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import recipe_probes
from common import cpu_features
from processes import PROJECT_DIR, RESULTS_DIR
from registry import AVX2_ONLY_SUFFIX

from conll_ner.markdown import replace_between

START = "<!-- RESULTS: AUTO-GENERATED FROM benchmarks/results/results*.json START (do not remove) -->"
END = "<!-- RESULTS: AUTO-GENERATED FROM benchmarks/results/results*.json END (do not remove) -->"
# where the documented Spanish and Dutch commands are shown
MULTILINGUAL_PAGE = PROJECT_DIR / "docs" / "multilingual.md"


def read_results(results_dir: Path = RESULTS_DIR) -> Dict[str, Optional[Dict[str, Any]]]:
    paths = {
        "full": results_dir / "results.json",
        "long": results_dir / "results_long.json",
        "recipe_probes": results_dir / "results_recipe_probes.json",
    }
    return {key: json.loads(path.read_text()) if path.is_file() else None for key, path in paths.items()}


def results_table(full: Optional[Dict[str, Any]], long: Optional[Dict[str, Any]]) -> str:
    """One row per pipeline of the latest runs: dev F1 and training time from
    the `long` mode (the transformer recipes at full length) and the `full`
    mode (the CNN), CPU words/s on raw sentences from the `inference` mode
    (transformers) and the `full` mode (CNN)."""
    inference = (full or {}).get("inference")
    ours_speed = hf_speed = hf_variant = None
    if inference:
        ours_speed, hf_speed, hf_variant = raw_text_speeds(inference)
    rows: List[List[str]] = []
    if long:
        cores = long["machine"]["cores"]
        trf, hf = long["spacy_trf"], long["hf_trainer"]
        rows.append(
            [
                f"spaCy transformer+ner, all-MiniLM-L6-v2, configs/transformer.cfg's default recipe of {long['date'][:10]}",
                f"{trf['dev']['f1'] * 100:.2f}",
                f"{trf['train']['train_seconds']:,.0f} s ({trf['train']['epochs']:g} epochs)",
                f"{ours_speed:,.0f} ({inference['default']})" if ours_speed else "",
                "`long`, `inference`",
            ]
        )
        rows.append(
            [
                "Hugging Face Trainer recipe of the model cards, same encoder (fp32)",
                f"{hf['dev']['f1'] * 100:.2f}",
                f"{hf['train']['train_seconds']:,.0f} s ({hf['train']['epochs']:g} epochs)",
                f"{hf_speed:,.0f} (fastest variant: {hf_variant})" if hf_speed else "",
                "`long`, `inference`",
            ]
        )
        if "hf_trainer_bf16" in long:
            bf16 = long["hf_trainer_bf16"]
            rows.append(
                [
                    "The same Trainer recipe with `bf16=True`",
                    f"{bf16['dev']['f1'] * 100:.2f}",
                    f"{bf16['train']['train_seconds']:,.0f} s ({bf16['train']['epochs']:g} epochs)",
                    "",
                    "`long`",
                ]
            )
    if full and "spacy_cnn" in full:
        cores = full["machine"]["cores"]
        cnn = full["spacy_cnn"]
        raw = cnn.get("inference", {}).get("raw_text")
        rows.append(
            [
                "spaCy CNN+ner, configs/cnn.cfg (no transformer)",
                f"{cnn['dev']['f1'] * 100:.2f}",
                f"{cnn['train']['train_seconds']:,.0f} s",
                f"{raw['words_per_second']:,.0f}" if raw else "",
                "`full`",
            ]
        )
    if not rows:
        return "No benchmark has been run yet: see [docs/benchmarks.md](docs/benchmarks.md)."
    features = [
        f"`{name}`: {cpu_features(run['machine'])}"
        for name, run in (("long", long), ("inference", inference), ("full", full))
        if run and cpu_features(run["machine"])
    ]
    lines = [
        f"CoNLL-2003 English dev set, trained and run on {cores} CPU cores; from "
        "[BENCHMARKS.md](BENCHMARKS.md), the latest run of each mode named. Times and speeds depend on what the "
        f"run's CPU computes natively ({'; '.join(features)}):",
        "",
        "| Pipeline | Dev F1 | Training | CPU words/s, raw sentences | Mode |",
        "|---|---:|---:|---:|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    avx2 = (full or {}).get("inference" + AVX2_ONLY_SUFFIX)
    if avx2:
        lines += ["", avx2_only_inference_line(avx2)]
    return "\n".join(lines)


def raw_text_speeds(inference: Dict[str, Any]) -> Tuple[float, float, str]:
    """An inference run's raw-sentence words/s: our default variant's, the
    fastest Hugging Face pipeline variant's, and that variant's name."""
    default = next(row for row in inference["ours"] if row["variant"] == inference["default"])
    fastest = max(
        (row for row in inference["hugging_face"] if row["input"] == "raw_text"),
        key=lambda row: row["words_per_second"],
    )
    return default["words_per_second"]["raw_text"], fastest["words_per_second"], fastest["variant"].split(": ", 1)[1]


def avx2_only_inference_line(inference: Dict[str, Any]) -> str:
    """The inference mode's run on an AVX2-only CPU, in words: its own
    figures, never in one ratio with the table's newer CPU."""
    ours_speed, hf_speed, hf_variant = raw_text_speeds(inference)
    loop = inference["onnx_runtime_loop"]
    return (
        f"On an AVX2-only CPU ({cpu_features(inference['machine'])}; the `inference` mode's run of "
        f"{inference['date'][:10]}), raw sentences: ours ({inference['default']}) "
        f"{ours_speed:,.0f} words/s, the fastest Hugging Face pipeline variant "
        f"({hf_variant}) {hf_speed:,.0f}, the hand-written ONNX Runtime "
        f"loop (int8, batch {loop['batch_size']['raw_text']}) {loop['words_per_second']['raw_text']:,.0f}; documents "
        "and the rest in [BENCHMARKS.md](BENCHMARKS.md#cpu-inference-against-the-hugging-face-pipeline-inference-mode-avx2-only-cpu)."
    )


def cpu_cores(machines: List[Dict[str, Any]]) -> str:
    """The cores and CPU features of the machines some runs of a table ran
    on: one kind, or each of its kinds (the docs name each run's machine)."""
    kinds = list(dict.fromkeys((machine["cores"], cpu_features(machine)) for machine in machines))
    if len(kinds) == 1:
        cores, features = kinds[0]
        return f"{cores} CPU cores ({features})"
    return f"CPUs of {len(kinds)} kinds (" + "; ".join(f"{cores} cores, {features}" for cores, features in kinds) + ")"


def full_files_table(results: Optional[Dict[str, Any]]) -> str:
    """Spanish and Dutch on the whole training and dev files, from the recipe
    probes' results: per language, the Trainer recipe's run of the
    documented command's epochs (readme_trainer_runs) beside our most
    recently recorded transformer run of the same epochs with the workflow's
    recipe (documented_recipe_runs) and the CNN default's run; dev F1 after
    the last epoch."""
    if not results or not results.get("trainer_runs"):
        return ""
    rows, machines = [], []
    for lang, trainer in readme_trainer_runs(results).items():
        run = recipe_probes.latest(
            documented_recipe_runs(results, recipe_probes.runs_like_trainer_run(results, trainer))
        )
        if run is None:
            continue
        machines.append(run["machine"])
        ours_f1, trainer_f1 = 100 * recipe_probes.final_dev_f1(run), 100 * trainer["dev_f1"]
        cnn = recipe_probes.cnn_default_run(results, lang)
        cnn_cell = (
            f"{100 * recipe_probes.final_dev_f1(cnn):.2f} ({cnn['settings']['epochs']:g} epochs)" if cnn else "not run"
        )
        rows.append(
            f"| {lang} | {trainer['epochs']:g} | {ours_f1:.2f} (`{run['name']}`; {recipe_probes.recipe(run['settings'])}) "
            f"| {trainer_f1:.2f} | {cnn_cell} |"
        )
    if not rows:
        return ""
    return "\n".join(
        [
            f"CoNLL-2002 Spanish and Dutch, **whole training and dev files**, trained on {cpu_cores(machines)} "
            "with multilingual-e5-small (4-bit weights dequantized), ours and the "
            "Hugging Face Trainer recipe for the same epochs, and the CNN default; dev F1 after the last epoch "
            "(each run's command, machine and remarks, and each recipe's mean over seeds against the Trainer's: "
            "[docs/multilingual.md](docs/multilingual.md)):",
            "",
            "| Language | Epochs | spaCy transformer+ner (run; recipe) | Trainer recipe, same encoder "
            "| spaCy CNN+ner (configs/cnn.cfg) |",
            "|---|---:|---|---:|---|",
            *rows,
        ]
    )


def readme_trainer_runs(results: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Per language, the first recorded Trainer run of the epochs that the
    language's most recent documented-command run trained for, so that a
    comparison probed at other epochs does not stand for what the documented
    command gives (its rows are in docs/multilingual.md); where the Trainer
    has no run of those epochs, or there is no documented run, the first of
    its most epochs."""
    by_lang: Dict[str, List[Dict[str, Any]]] = {}
    for trainer in results["trainer_runs"].values():
        by_lang.setdefault(trainer["lang"], []).append(trainer)
    chosen = {}
    for lang, trainers in by_lang.items():
        documented = documented_run(results, lang)
        wanted = documented["settings"].get("epochs") if documented else None
        # max keeps the first of equals: the first recorded
        chosen[lang] = max(trainers, key=lambda trainer: (trainer["epochs"] == wanted, trainer["epochs"]))
    return chosen


def command_var(command: str, name: str) -> Optional[str]:
    """The value a `spacy project run` command line gives `--vars.<name>`;
    None where it leaves the var at project.yml's default."""
    words = shlex.split(command)
    flag = f"--vars.{name}"
    return words[words.index(flag) + 1] if flag in words[:-1] else None


def documented_command(lang: str, page: Path = MULTILINGUAL_PAGE) -> Optional[str]:
    """The `spacy project run all` command that docs/multilingual.md shows
    for a language, where it shows one: the page says what the documented
    command is, so the README's row follows the page rather than a second
    copy of its settings here."""
    for line in page.read_text(encoding="utf8").splitlines():
        if line.startswith("spacy project run all ") and command_var(line, "lang") == lang:
            return line
    return None


def documented_run(results: Dict[str, Any], lang: str) -> Optional[Dict[str, Any]]:
    """A language's most recently recorded transformer run of the documented
    command: its train step with the epochs the documented command asks for
    (`--vars.epochs`), so that a run of the workflow at other epochs, such
    as the per-language runs the joint pipeline is set beside (the config's
    4), does not stand for the documented 6."""
    command = documented_command(lang)
    epochs = command_var(command, "epochs") if command else None
    return recipe_probes.latest(
        [
            run
            for run in recipe_probes.workflow_runs(results)
            if run["settings"]["transformer"]
            and run["settings"]["lang"] == lang
            and command_var(run["command"], "epochs") == epochs
        ]
    )


def documented_recipe_runs(results: Dict[str, Any], runs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Of some runs of one language, those with the recipe and the seed of
    that language's most recent documented-command transformer run, so that
    a probe of a variant (first-piece pooling, say) or of another seed
    recorded after it does not stand for what the command gives; all of them
    where no such run is recorded."""
    if not runs:
        return runs
    documented = documented_run(results, runs[0]["settings"]["lang"])
    if documented is None:
        return runs
    return [
        run
        for run in runs
        if recipe_probes.same_recipe(run["settings"], documented["settings"])
        and recipe_probes.seed(run["settings"]) == recipe_probes.seed(documented["settings"])
    ]


def joint_files_table(results: Optional[Dict[str, Any]]) -> str:
    """The documented joint command's runs (en+es+nl) on each language's
    whole dev file beside our pipeline of that language alone, as the recipe
    probes render them; the probes are in BENCHMARKS.md."""
    joints = recipe_probes.joint_workflow_runs(results) if results else []
    if not joints:
        return ""
    shown = [
        run
        for joint in joints
        for run in [joint, *(recipe_probes.per_language_run(results, joint, lang) for lang in recipe_probes.LANGUAGES)]
        if run is not None
    ]
    return (
        f"One pipeline for English, Spanish and Dutch (`--vars.lang multi`), **whole training and dev files**, "
        f"trained on {cpu_cores([run['machine'] for run in shown])} with multilingual-e5-small (4-bit weights "
        "dequantized), beside our pipeline of each language alone with the same encoder, epochs and recipe; each "
        "one's best model scored on the language's dev file ([docs/multilingual.md](docs/multilingual.md)):\n\n"
        + recipe_probes.joint_comparison_markdown(results, joints).rstrip("\n")
    )


def render_readme(text: str, results_dir: Path = RESULTS_DIR) -> str:
    results = read_results(results_dir)
    tables = [
        results_table(results["full"], results["long"]),
        full_files_table(results["recipe_probes"]),
        joint_files_table(results["recipe_probes"]),
    ]
    return replace_between(text, START, END, "\n\n".join(table for table in tables if table))


def update_readme(readme: Path, results_dir: Path = RESULTS_DIR) -> None:
    """Re-render the table in place, where the README has its markers."""
    text = readme.read_text(encoding="utf8")
    if START in text:
        readme.write_text(render_readme(text, results_dir), encoding="utf8")
