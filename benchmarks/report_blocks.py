"""Blocks of text that every benchmark report renders the same way."""

from typing import Any, Dict, List


def remarks(results: Dict[str, Any]) -> List[str]:
    """What was seen during a run that its figures do not show, recorded in
    its results file under `remarks` (by whoever ran it: the harness cannot
    know that the machine was shared, say)."""
    return (
        ["", "Remarks on this run:", ""] + [f"- {remark}" for remark in results.get("remarks", [])]
        if results.get("remarks")
        else []
    )
