"""What a training run needs to go on where it stopped, saved and restored.

A run of several hours on a CPU can be cut short (a machine that is taken
back, a session that ends), and spaCy's `train` can only start again from
step 0: it keeps no optimizer state, random state or place in the epoch.
This module saves them beside the weights every so often, into the run's
`resume` folder (atomically: a save cut short leaves the last one), and
restores them into a pipeline that was initialized from the same config.

- Weights: the parameters of each component's thinc model, and the state
  dict of each torch module inside it (a transformer's).
- The optimizer: Adam's moments, update counts and parameter averages.
  thinc keys them by the ids of model nodes and shims, which a new process
  numbers afresh, so they are saved under each owner's place in the
  pipeline (component name, position in `Model.walk()`, shim index).
- The place in the data: the epoch, the order of its examples and how many
  batches of it were used; the schedules are stepped on to the same update.
- Python's, numpy's and torch's random states, so the dropout masks and the
  next epoch's shuffle are those of a run that was never stopped. On a GPU,
  thinc draws dropout masks with cupy, whose state cannot be saved: a
  resumed GPU run continues with other masks.
- The evaluations so far (spaCy's `info` dicts), which the loggers are
  given again on resume: the health guard's patience, the JSONL log and the
  console then continue as one run.
"""

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy
import torch
from spacy.language import Language
from thinc.api import Model, Optimizer, get_current_ops, to_numpy

from ..files import atomic_folder, write_json
from ..pipeline.library_internals import torch_model

RESUME_FOLDER = "resume"
POSITION_FILE = "position.json"
CONFIG_FILE = "config.cfg"
MOMENTS_FILE = "optimizer.npz"
WEIGHTS_FILE = "weights.npz"
OPTIMIZER_FILE = "optimizer.json"
MOMENT_TABLES = ("mom1", "mom2", "averages")


@dataclass
class TrainingPosition:
    """Where a run is: `updates` done (spaCy's next step number), the epoch
    with its example order and the batches of it used, the time and words
    so far, and every evaluation's info."""

    updates: int = 0
    epoch: int = 0
    epoch_order: List[int] = field(default_factory=list)
    epoch_batches: int = 0
    seconds: float = 0.0
    words: int = 0
    evaluations: List[Dict[str, Any]] = field(default_factory=list)
    losses: Dict[str, float] = field(default_factory=dict)
    random_states: Dict[str, Any] = field(default_factory=dict)


def trained_models(nlp: Language) -> List[Tuple[str, Model]]:
    return [(name, proc.model) for name, proc in nlp.components if isinstance(getattr(proc, "model", None), Model)]


class ParameterPlaces:
    """The pipeline's model nodes and shims by their place, which a new
    process finds again: `component:node` (the node's position in
    `Model.walk()`) and `component:node:shimN`. Optimizer keys (owner id,
    parameter name) become `place|name`."""

    def __init__(self, nlp: Language) -> None:
        self.nodes: Dict[str, Model] = {}
        self.shims: Dict[str, Any] = {}
        for name, model in trained_models(nlp):
            for index, node in enumerate(model.walk()):
                self.nodes[f"{name}:{index}"] = node
                for shim_index, shim in enumerate(node.shims):
                    self.shims[f"{name}:{index}:shim{shim_index}"] = shim
        self.node_places = {node.id: place for place, node in self.nodes.items()}
        self.shim_places = {shim.id: place for place, shim in self.shims.items()}

    def place(self, key: Tuple[int, str]) -> str:
        # node and shim ids are counted apart: a node owns a key with one of its parameters' names
        owner, name = key
        if owner in self.node_places and name in self.nodes[self.node_places[owner]].param_names:
            return f"{self.node_places[owner]}|{name}"
        if owner in self.shim_places:
            return f"{self.shim_places[owner]}|{name}"
        raise ValueError(f"the optimizer holds state for {key}, which no model node or shim of the pipeline owns")

    def key(self, place: str) -> Tuple[int, str]:
        owner, name = place.rsplit("|", 1)
        holder = self.nodes[owner] if owner in self.nodes else self.shims.get(owner)
        if holder is None:
            raise ValueError(f"the saved optimizer state names {place}, which this pipeline does not have")
        return (holder.id, name)


def save_weights(folder: Path, places: ParameterPlaces) -> None:
    """The parameters alone: thinc's nodes' in one file, each torch module's
    state dict in its own. Not `Model.to_bytes`, whose shim is rebuilt from
    its saved config on load: spacy-transformers writes that config with
    srsly's JSON, which turns BERT's layer_norm_eps of 1e-12 into 0.0."""
    arrays = {
        f"{place}|{name}": to_numpy(node.get_param(name))
        for place, node in places.nodes.items()
        for name in node.param_names
        if node.has_param(name)
    }
    numpy.savez(folder / WEIGHTS_FILE, **arrays)
    for place, shim in places.shims.items():
        torch.save(torch_model(shim).state_dict(), folder / f"{place}.pt")


def load_weights(folder: Path, places: ParameterPlaces) -> None:
    ops = get_current_ops()
    with numpy.load(folder / WEIGHTS_FILE) as arrays:
        for saved in arrays.files:
            place, name = saved.rsplit("|", 1)
            places.nodes[place].set_param(name, ops.asarray(arrays[saved]))
    for place, shim in places.shims.items():
        module = torch_model(shim)
        module.load_state_dict(torch.load(folder / f"{place}.pt", map_location=next(module.parameters()).device))


def capture_random_states() -> Dict[str, Any]:
    python_state = random.getstate()
    numpy_state = numpy.random.get_state()
    return {
        "python": [python_state[0], list(python_state[1]), python_state[2]],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "torch": torch.get_rng_state().tolist(),
    }


def restore_random_states(states: Dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    numpy.random.set_state((name, numpy.asarray(keys, dtype=numpy.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(states["torch"], dtype=torch.uint8))


def save_state(output_path: Path, nlp: Language, optimizer: Optimizer, position: TrainingPosition) -> None:
    """Save the run's state into output_path/resume, replacing the last one
    only once the new one is complete."""
    places = ParameterPlaces(nlp)
    arrays: Dict[str, numpy.ndarray] = {}
    tables: Dict[str, List[str]] = {}
    for table in MOMENT_TABLES:
        tables[table] = []
        for key, value in (getattr(optimizer, table) or {}).items():
            arrays[f"{table}_{len(tables[table])}"] = to_numpy(value)
            tables[table].append(places.place(key))
    counts = {places.place(key): count for key, count in optimizer.nr_update.items()}
    position.random_states = capture_random_states()
    with atomic_folder(output_path / RESUME_FOLDER) as staging:
        save_weights(staging, places)
        numpy.savez(staging / MOMENTS_FILE, **arrays)
        write_json(staging / OPTIMIZER_FILE, {"tables": tables, "nr_update": counts})
        write_json(staging / POSITION_FILE, asdict(position))
        (staging / CONFIG_FILE).write_text(nlp.config.to_str(), encoding="utf8")


def saved_config(output_path: Path) -> Optional[str]:
    """The config of the run whose state output_path holds, or None."""
    path = output_path / RESUME_FOLDER / CONFIG_FILE
    return path.read_text(encoding="utf8") if path.exists() else None


def load_state(output_path: Path, nlp: Language, optimizer: Optimizer) -> TrainingPosition:
    """Restore the saved weights and optimizer state into `nlp` (initialized
    from the same config) and `optimizer` (fresh from it, its schedules
    stepped on to the saved update); the position to go on from. The random
    states are restored by the caller once it has rebuilt the epoch."""
    folder = output_path / RESUME_FOLDER
    places = ParameterPlaces(nlp)
    load_weights(folder, places)
    saved = json.loads((folder / OPTIMIZER_FILE).read_text())
    ops = get_current_ops()
    with numpy.load(folder / MOMENTS_FILE) as arrays:
        for table, saved_places in saved["tables"].items():
            target = getattr(optimizer, table)
            if target is None and saved_places:
                raise ValueError(f"the saved optimizer kept {table}, which this config's optimizer does not")
            for number, place in enumerate(saved_places):
                target[places.key(place)] = ops.asarray(arrays[f"{table}_{number}"])
    for place, count in saved["nr_update"].items():
        optimizer.nr_update[places.key(place)] = count
    position = TrainingPosition(**json.loads((folder / POSITION_FILE).read_text()))
    for _ in range(position.updates):
        optimizer.step_schedules()
    return position
