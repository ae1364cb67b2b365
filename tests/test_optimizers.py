"""conll_ner.AdamWithLayerDecay.v1: the recipe probe's layer-wise learning
rates, from the config's override to the size of each parameter's step."""

import shlex

import numpy
import pytest
from conftest import PROJECT_DIR
from spacy.cli._util import parse_config_overrides
from spacy.util import load_config, registry
from wasabi import Printer

from conll_ner.pipeline.library_internals import torch_model
from conll_ner.training.optimizers import LayerDecayOptimizer, create_adam_with_layer_decay
from conll_ner.training.train import ENCODER_LAYERS, encoder_recipe


def documented_overrides():
    """The config overrides of docs/recipes.md's command with another layer
    decay, as the train step parses them."""
    text = (PROJECT_DIR / "docs" / "recipes.md").read_text(encoding="utf8")
    (line,) = [line for line in text.splitlines() if line.startswith("python") and "optimizer.layer_decay" in line]
    tokens = shlex.split(line)
    first = next(i for i, token in enumerate(tokens) if token.startswith("--training.optimizer"))
    return parse_config_overrides(tokens[first:])


def test_each_layer_gets_decay_to_the_power_of_its_depth_below_the_top():
    optimizer = create_adam_with_layer_decay(1e-3, layer_decay=0.5, encoder_layers=4)
    scales = {
        name: optimizer.layer_scale(name)
        for name in (
            "encoder.layer.3.output.dense.weight",
            "encoder.layer.2.attention.self.query.weight",
            "encoder.layer.0.output.LayerNorm.bias",
            "embeddings.word_embeddings.weight",
            "embeddings.position_embeddings.weight",
            "pooler.dense.weight",
            "W",
        )
    }
    assert scales == {
        "encoder.layer.3.output.dense.weight": 1.0,
        "encoder.layer.2.attention.self.query.weight": 0.5,
        "encoder.layer.0.output.LayerNorm.bias": 0.125,
        "embeddings.word_embeddings.weight": 0.0625,
        "embeddings.position_embeddings.weight": 0.0625,
        "pooler.dense.weight": 1.0,
        "W": 1.0,
    }


def test_a_layer_beyond_the_configured_depth_is_refused_naming_the_setting():
    optimizer = create_adam_with_layer_decay(1e-3, layer_decay=0.9, encoder_layers=6)
    with pytest.raises(ValueError, match="training.optimizer.encoder_layers"):
        optimizer.layer_scale("encoder.layer.6.output.dense.weight")
    # without decay the depth does not matter: a 24-layer encoder under the config's 12
    flat = create_adam_with_layer_decay(1e-3, layer_decay=1.0, encoder_layers=12)
    assert flat.layer_scale("encoder.layer.23.output.dense.weight") == 1.0


@pytest.mark.parametrize("layer_decay", [0.5, 1.0])
def test_only_parameters_outside_the_encoder_get_the_head_rate_scale(layer_decay):
    optimizer = create_adam_with_layer_decay(1e-3, layer_decay=layer_decay, encoder_layers=2, head_rate_scale=5.0)
    assert optimizer.layer_scale("W") == optimizer.layer_scale("pooler.dense.weight") == 5.0
    assert optimizer.layer_scale("encoder.layer.1.output.dense.weight") == 1.0
    assert optimizer.layer_scale("embeddings.word_embeddings.weight") == layer_decay**2


@pytest.mark.parametrize(
    "settings",
    [
        {"layer_decay": 0.0, "encoder_layers": 4},
        {"layer_decay": 0.9, "encoder_layers": 0},
        {"layer_decay": 0.9, "encoder_layers": 4, "head_rate_scale": 0.0},
    ],
)
def test_settings_out_of_range_are_refused(settings):
    with pytest.raises(ValueError):
        create_adam_with_layer_decay(1e-3, **settings)


def test_the_documented_overrides_give_one_rate_for_the_whole_encoder_with_the_configs_schedule():
    overrides = documented_overrides()
    assert ENCODER_LAYERS not in overrides  # the train step counts the encoder's layers
    config = load_config(PROJECT_DIR / "configs" / "transformer.cfg", overrides=overrides)
    overrides.update(encoder_recipe(config, overrides, Printer(no_print=True)))
    config = load_config(PROJECT_DIR / "configs" / "transformer.cfg", overrides=overrides)
    optimizer = registry.resolve({"optimizer": config["training"]["optimizer"]})["optimizer"]
    assert isinstance(optimizer, LayerDecayOptimizer)
    assert (optimizer.layer_decay, optimizer.encoder_layers) == (1.0, 12)  # the override's; the config's mBERT has 12
    assert optimizer.layer_scale("embeddings.word_embeddings.weight") == 1.0
    # the rest of the section is the config's Adam, warmup schedule included
    assert optimizer.L2 == config["training"]["optimizer"]["L2"]
    assert optimizer.learn_rate == 0.0  # step 0 of the warmup


def test_an_update_moves_the_lower_layers_by_the_decayed_rate_and_the_ner_model_by_the_head_rate(tmp_path):
    """Adam's first step moves each weight by about the rate, so the median
    step of a layer's weights shows its rate. spacy-transformers applies the
    encoder's gradient of one update at the next update's finish_update (its
    listeners backpropagate after the transformer's own update), so the
    encoder's first step is the second update's."""
    from spacy.training import Example
    from tiny_models import TRAIN, build_tiny_bert, fixture_texts, shipped_pipeline

    bert = build_tiny_bert(tmp_path / "bert", fixture_texts())  # 2 layers
    nlp = shipped_pipeline("transformer", {"components.transformer.model.name": str(bert)})
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN]
    nlp.initialize(lambda: examples)
    (shim,) = [shim for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims]
    optimizer = create_adam_with_layer_decay(
        1e-3, layer_decay=0.25, encoder_layers=2, head_rate_scale=4.0, L2=0.0, grad_clip=0.0
    )
    ner_params = [(node, name) for node in nlp.get_pipe("ner").model.walk() for name in node.param_names]
    ner_before = [node.get_param(name).copy() for node, name in ner_params if node.has_param(name)]
    nlp.update(examples, sgd=optimizer, drop=0.0)
    ner_after = [node.get_param(name) for node, name in ner_params if node.has_param(name)]
    ner_steps = numpy.concatenate([numpy.abs(a - b).ravel() for a, b in zip(ner_after, ner_before)])
    assert float(numpy.median(ner_steps[ner_steps > 0])) == pytest.approx(4e-3, rel=0.1)
    before = {name: value.detach().numpy().copy() for name, value in torch_model(shim).named_parameters()}
    assert not any(isinstance(name, str) and "layer" in name for _, name in optimizer.nr_update)
    nlp.update(examples, sgd=optimizer, drop=0.0)
    assert optimizer.nr_update[(shim.id, "encoder.layer.0.output.dense.weight")] == 1
    after = dict(torch_model(shim).named_parameters())

    def median_step(prefix: str) -> float:
        steps = [
            numpy.abs(after[name].detach().numpy() - value).ravel()
            for name, value in before.items()
            if name.startswith(prefix) and name.endswith("weight")
        ]
        moved = numpy.concatenate(steps)
        return float(numpy.median(moved[moved > 0]))

    top, bottom, embeddings = (
        median_step("encoder.layer.1."),
        median_step("encoder.layer.0."),
        median_step("embeddings."),
    )
    assert top == pytest.approx(1e-3, rel=0.1)
    assert bottom / top == pytest.approx(0.25, rel=0.1)
    assert embeddings / top == pytest.approx(0.0625, rel=0.1)
