"""The page at GET /: a person pastes text and sees its entities highlighted
by spaCy's displaCy renderer, with a legend of the pipeline's labels and a
curl line to copy. Everything is inline (styles, script), so it works
offline; the script posts the text to /render, which runs the same batcher
and limits as /ents and answers with displaCy's markup."""

import html
import json
from typing import Dict, Iterable, List

from spacy import displacy
from spacy.displacy.render import DEFAULT_LABEL_COLORS

from ..inference.annotator import Row

# displaCy's colours, and the CoNLL labels it lacks (PER as PERSON)
LABEL_COLORS: Dict[str, str] = {**DEFAULT_LABEL_COLORS, "PER": DEFAULT_LABEL_COLORS["PERSON"], "MISC": "#f0d0ff"}
OTHER_COLOR = "#ddd"
EXAMPLE_TEXT = "Peter Blackburn met EU officials in Brussels on Tuesday, and Nokia's board in Helsinki."


def render_entities(texts: List[str], rows: List[Row]) -> str:
    """displaCy's markup of each text's entities (manual mode: the entities
    come from the rows, which the API returns too)."""
    parsed = [
        {"text": text, "ents": [{"start": e.start_char, "end": e.end_char, "label": e.label} for e in row.entities]}
        for text, row in zip(texts, rows)
    ]
    return displacy.render(parsed, style="ent", manual=True, page=False, options={"colors": LABEL_COLORS})


def curl_example(base_url: str, text: str = EXAMPLE_TEXT) -> str:
    body = json.dumps({"texts": [text]})
    return f"curl -s {base_url}ents -H 'Content-Type: application/json' -d '{body}'"


def render_page(name: str, version: str, precision: str, labels: Iterable[str], base_url: str) -> str:
    legend = "".join(
        f'<span class="legend" style="background: {LABEL_COLORS.get(label, OTHER_COLOR)}">{html.escape(label)}</span>'
        for label in sorted(labels)
    )
    return PAGE.format(
        title=html.escape(f"{name} {version}"),
        precision=html.escape(precision),
        legend=legend or "(the pipeline names no entity labels)",
        example=html.escape(EXAMPLE_TEXT),
        curl=html.escape(curl_example(base_url)),
    )


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}: named entities</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 2em auto;
  max-width: 60em; padding: 0 1em; color: #222; }}
textarea {{ width: 100%; height: 9em; font-size: 1em; padding: 0.5em; box-sizing: border-box; }}
button {{ font-size: 1em; padding: 0.4em 1.2em; margin: 0.5em 0.5em 0.5em 0; cursor: pointer; }}
.legend {{ display: inline-block; padding: 0.25em 0.6em; margin: 0 0.4em 0.4em 0; border-radius: 0.35em;
  font-weight: bold; font-size: 0.8em; }}
#result {{ border: 1px solid #ddd; border-radius: 0.35em; padding: 1em; min-height: 3em; margin: 1em 0; }}
#error {{ color: #b00020; white-space: pre-wrap; }}
pre {{ background: #f6f8fa; padding: 0.8em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }}
.meta {{ color: #666; font-size: 0.9em; }}
</style>
</head>
<body>
<h1>Named entities</h1>
<p class="meta">{title}, predicting in {precision}</p>
<form id="form">
<textarea id="text" name="text" aria-label="Text">{example}</textarea>
<button type="submit" id="submit">Find entities</button>
</form>
<div>{legend}</div>
<div id="result"></div>
<div id="error"></div>
<h2>From the command line</h2>
<pre id="curl">{curl}</pre>
<button type="button" id="copy">Copy</button>
<script>
const form = document.getElementById("form");
const result = document.getElementById("result");
const error = document.getElementById("error");
form.addEventListener("submit", async (event) => {{
  event.preventDefault();
  error.textContent = "";
  result.setAttribute("aria-busy", "true");
  try {{
    const response = await fetch("render", {{
      method: "POST",
      headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{texts: [document.getElementById("text").value]}}),
    }});
    const answer = await response.json();
    if (response.ok) {{
      result.innerHTML = answer.html;
    }} else {{
      result.innerHTML = "";
      error.textContent = response.status + ": " + answer.error;
    }}
  }} catch (err) {{
    error.textContent = String(err);
  }} finally {{
    result.removeAttribute("aria-busy");
  }}
}});
document.getElementById("copy").addEventListener("click", () => {{
  const text = document.getElementById("curl").textContent;
  if (navigator.clipboard) {{
    navigator.clipboard.writeText(text);
  }} else {{
    const range = document.createRange();
    range.selectNodeContents(document.getElementById("curl"));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    document.execCommand("copy");
  }}
}});
</script>
</body>
</html>
"""
