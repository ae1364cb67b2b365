"""Generated parts of Markdown pages: the text between two marker comments
is replaced by its rendering, the rest of the page is left as written (the
README's vars and results tables)."""


def replace_between(text: str, start: str, end: str, content: str) -> str:
    """text with what lies between the markers replaced by content."""
    if start not in text or end not in text:
        raise ValueError(f"markers missing: {start} ... {end}")
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    return f"{before}{start}\n{content}\n{end}{after}"
