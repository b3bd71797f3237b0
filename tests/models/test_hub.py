"""Where a checkpoint is: a Hub id that cannot be fetched, a missing run folder, a revision."""

import pytest

from textrnn import CheckpointError, RNNClassifier, load_model

from ..helpers import classifier


def test_hub_id_that_cannot_be_fetched_is_a_one_line_error(monkeypatch):
    with pytest.raises(CheckpointError, match="the Hub repository nobody/nothing could not be fetched"):
        RNNClassifier.from_pretrained("nobody/nothing")


def test_a_missing_run_folder_says_it_is_missing_here_and_on_the_hub(tmp_path, monkeypatch):
    """runs/sst2 before training: a path that looks like a Hub id. The error names both places it looked."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"no folder runs/sst2 here, and the Hub repository runs/sst2 could "
                                              r"not be fetched .*check the path \(a run's output_dir"):
        load_model("runs/sst2")


def test_a_hub_revision_reaches_the_download_and_a_local_path_refuses_it(char_tok, tmp_path, monkeypatch):
    import huggingface_hub

    folder = classifier(char_tok).save_pretrained(tmp_path / "snapshot")
    asked = []

    def snapshot_download(repo_id, revision=None, allow_patterns=None):  # the Hub cannot be reached here
        asked.append((repo_id, revision))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert load_model("someone/tiny", revision="v1.0").label_names == ["a", "b", "c"]
    assert asked == [("someone/tiny", "v1.0")]
    with pytest.raises(CheckpointError, match="revision='v1.0' applies to a Hub id, but .* is a local path"):
        load_model(folder, revision="v1.0")
