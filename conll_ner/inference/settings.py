"""The settings of an annotation run that every engine and worker shares."""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List

ENGINES = ("local", "ray")
OUTPUT_FORMATS = ("jsonl", "parquet")


class AnnotateError(ValueError):
    """A setting, input or output folder that an annotation run cannot use."""


class ForeignOutputError(AnnotateError):
    """An output folder that holds another run's output (another model, input
    or settings), which a resuming run must not mix with its own. Its
    `differences` say what changed, for callers that own the folder and
    replace it instead (the distill-data step)."""

    def __init__(self, folder: Path, differences: List[str]) -> None:
        self.folder = folder
        self.differences = differences
        super().__init__(
            f"{folder} holds the output of another run ({'; '.join(differences)}); mixing them would give "
            "annotations that no single model made. Give another output folder, or do not resume "
            "(--no-resume, resume=False) to replace that output"
        )


@dataclass(frozen=True)
class Settings:
    """How documents are read and cut. Everything here but `batch_size` can
    change the output, so it is recorded with the output and checked when a
    run resumes."""

    text_field: str = "text"
    id_field: str = "id"
    # documents per nlp.pipe batch
    batch_size: int = 32
    # longer texts are cut into pieces of at most this many characters
    max_chars: int = 10_000
    # longer texts are not annotated at all but recorded as error rows
    max_text_chars: int = 10_000_000

    def __post_init__(self) -> None:
        if not self.text_field:
            raise AnnotateError("text_field must name a field")
        if self.batch_size < 1:
            raise AnnotateError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.max_chars < 100:
            raise AnnotateError(f"max_chars must be at least 100, not {self.max_chars}")
        if self.max_text_chars < self.max_chars:
            raise AnnotateError(f"max_text_chars ({self.max_text_chars}) must be at least max_chars ({self.max_chars})")

    @property
    def chunk_docs(self) -> int:
        """Documents handed to a worker at once and annotated in one memory
        zone: a few batches, so that workers stay busy and the string store
        is freed often."""
        return self.batch_size * 4

    @property
    def max_line_bytes(self) -> int:
        """The longest input line that is read into memory: room for a text
        of max_text_chars characters escaped in JSON (up to 6 bytes each)."""
        return self.max_text_chars * 6 + 65_536

    def recorded(self) -> Dict[str, object]:
        """The settings that shape the output, as recorded beside it."""
        recorded = asdict(self)
        del recorded["batch_size"]
        return recorded
