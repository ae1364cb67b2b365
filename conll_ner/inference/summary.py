"""What an annotate run's summary (annotate.annotate's answer) tells the user:
the shards and documents that failed, and one closing line of counts and
speeds."""

from pathlib import Path
from typing import Any, Dict, Union

from wasabi import Printer


def report_problems(summary: Dict[str, Any], msg: Printer) -> None:
    """The shards not written, and the documents and batches that needed
    another way through."""
    for reason in summary["failed_shards"]:
        msg.fail(f"Shard not written: {reason}")
    if summary["documents_failed"]:
        msg.warn(
            f"{summary['documents_failed']:,} documents could not be annotated: their rows carry the reason in `error`"
        )
    if summary["retried_batches"]:
        msg.warn(
            f"{summary['retried_batches']:,} batches failed in the pipeline and were annotated text by text "
            "(slower, rows complete): a component cannot handle some mix of texts, or memory ran out"
        )


def summary_line(summary: Dict[str, Any], output: Union[str, Path]) -> str:
    """Documents and shards done, skipped and failed, words, and speeds."""
    return (
        f"Documents: {summary['documents_done']:,} done, {summary['documents_skipped']:,} skipped, "
        f"{summary['documents_failed']:,} failed; shards: {summary['shards_done']} done, "
        f"{summary['shards_skipped']} skipped, {summary['shards_failed']} failed; {summary['words']:,} words "
        f"in {summary['seconds']:.1f} s: {summary['documents_per_second']:,.1f} documents/s, "
        f"{summary['words_per_second']:,.0f} words/s, the first after {summary['first_output_seconds']:.1f} s "
        f"-> {output}"
    )
