import pytest
from conftest import PROJECT_DIR
from spacy.util import load_config
from tiny_models import build_tiny_bert, fixture_texts

from conll_ner.training.encoders import encoder_layers, encoder_size, setting_by_encoder_size


def test_documented_encoders_are_sized_offline():
    assert encoder_size("bert-base-multilingual-cased") == "base"
    assert encoder_size("xlm-roberta-base") == "base"
    assert encoder_size("bert-large-cased") == "large"
    assert encoder_size("xlm-roberta-large") == "large"


def test_a_local_checkpoint_is_sized_from_its_config(tmp_path):
    assert encoder_size(str(build_tiny_bert(tmp_path / "tiny", fixture_texts()))) == "small"


def test_an_unreadable_encoder_says_how_to_set_the_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="initial_rate"):
        encoder_size(str(tmp_path / "no-such-model"))


@pytest.mark.parametrize(
    "name,rate,size", [("bert-base-multilingual-cased", 5e-5, "base"), ("xlm-roberta-large", 1e-5, "large")]
)
def test_transformer_config_rate_follows_the_encoder(name, rate, size):
    config = load_config(
        PROJECT_DIR / "configs" / "transformer.cfg", overrides={"components.transformer.model.name": name}
    )
    assert setting_by_encoder_size(config, "learn_rate_by_encoder_size") == (rate, size)


def test_configs_without_a_rate_table_keep_their_rate():
    assert (
        setting_by_encoder_size(load_config(PROJECT_DIR / "configs" / "cnn.cfg"), "learn_rate_by_encoder_size") is None
    )


def test_layer_counts_come_offline_for_documented_encoders_and_from_a_local_config(tmp_path):
    import json

    assert encoder_layers("xlm-roberta-base") == 12
    assert encoder_layers("bert-large-cased") == 24
    bert = build_tiny_bert(tmp_path / "tiny", fixture_texts())
    assert encoder_layers(str(bert)) == json.loads((bert / "config.json").read_text())["num_hidden_layers"]


def test_an_unreadable_encoder_says_how_to_set_its_layers(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="training.optimizer.encoder_layers"):
        encoder_layers(str(tmp_path / "no-such-model"))


@pytest.mark.parametrize("name,decay", [("bert-base-multilingual-cased", 1.0), ("xlm-roberta-large", 1.0)])
def test_base_and_large_encoders_keep_one_rate_for_the_whole_encoder(name, decay):
    config = load_config(
        PROJECT_DIR / "configs" / "transformer.cfg", overrides={"components.transformer.model.name": name}
    )
    assert setting_by_encoder_size(config, "layer_decay_by_encoder_size")[0] == decay
    assert setting_by_encoder_size(config, "head_rate_scale_by_encoder_size")[0] == 1.0  # unmeasured: no head factor
    # what plain `spacy train` uses for the default mBERT: no decay, its 12 layers
    assert (
        config["training"]["optimizer"]["layer_decay"] == 1.0
        and config["training"]["optimizer"]["encoder_layers"] == 12
        and config["training"]["optimizer"]["head_rate_scale"] == 1.0
    )
