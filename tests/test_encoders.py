import json

import pytest

from conll_ner.training.encoders import checkpoint_name, encoder_name, is_local_checkpoint


@pytest.mark.parametrize(
    "transformer,expected",
    [
        ("bert-base-multilingual-cased", "mbert"),
        ("xlm-roberta-base", "xlmr_base"),
        ("xlm-roberta-large", "xlmr_large"),
        ("bert-large-cased", "bert_large"),
    ],
)
def test_encoder_name_of_documented_hub_encoders(transformer, expected):
    assert encoder_name(transformer) == expected


def test_encoder_name_of_local_checkpoint_is_its_sanitised_folder_name(tmp_path):
    checkpoint = tmp_path / "All-MiniLM-L6.v2"
    checkpoint.mkdir()
    assert encoder_name(str(checkpoint)) == "all_minilm_l6_v2"
    assert encoder_name(f"{checkpoint}/") == "all_minilm_l6_v2"


def test_encoder_name_of_a_checkpoint_from_another_machine_is_its_folder_name():
    assert encoder_name("/home/someone/models/gbert_base") == "gbert_base"


def test_encoder_name_of_other_hub_ids_keeps_the_owner():
    assert encoder_name("dslim/bert-base-NER") == "dslim_bert_base_ner"


def test_given_encoder_name_wins_and_is_checked(tmp_path):
    assert encoder_name(str(tmp_path), "tinybert") == "tinybert"
    assert encoder_name("xlm-roberta-base", "xlmr_b") == "xlmr_b"
    with pytest.raises(ValueError, match="letters, digits and _"):
        encoder_name("xlm-roberta-base", "xlmr-base")


def test_pipeline_without_transformer_is_named_cnn():
    assert encoder_name(None) == "cnn"


def test_local_checkpoints_are_folders_or_paths(tmp_path):
    assert is_local_checkpoint(str(tmp_path))
    assert is_local_checkpoint("/gone/elsewhere/model")
    assert is_local_checkpoint("./model")
    assert not is_local_checkpoint("xlm-roberta-base")
    assert not is_local_checkpoint("FacebookAI/xlm-roberta-base")


def test_checkpoint_name_is_the_saved_hub_id_else_the_folder_name(tmp_path):
    assert checkpoint_name("FacebookAI/xlm-roberta-base") == "FacebookAI/xlm-roberta-base"
    saved = tmp_path / "model"
    saved.mkdir()
    (saved / "config.json").write_text(json.dumps({"_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}))
    assert checkpoint_name(str(saved)) == "nreimers/MiniLM-L6-H384-uncased"
    # saved from a local path, or by a transformers version that no longer writes it
    from_path = tmp_path / "finetuned-bert"
    from_path.mkdir()
    (from_path / "config.json").write_text(json.dumps({"_name_or_path": "/data/run3/checkpoint-500"}))
    assert checkpoint_name(str(from_path)) == "finetuned-bert"
    assert checkpoint_name("/gone/elsewhere/tiny-bert") == "tiny-bert"
