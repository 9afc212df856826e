"""Bad input fails clearly and leaves no artifacts: missing models, altered snapshots, wrong
schemas; artifacts hold safetensors, JSON and text only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.exports.schemas import Schema  # noqa: E402
from app.training.artifacts import ArtifactWriter  # noqa: E402
from app.training.config import (  # noqa: E402
    BestOfNConfig,
    DpoConfig,
    RewardModelConfig,
)
from app.training.errors import ModelNotFound, TrainingInputError  # noqa: E402
from app.training.run import run_training  # noqa: E402
from tests.training.helpers import (  # noqa: E402
    MemoryContext,
    preference_rows,
    ranking_rows,
    save_tiny_model,
    vocabulary,
    write_snapshot,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("base") / "gpt2", vocabulary())


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "snap", Schema.preference, preference_rows(8))


def run(config: object, snap: Path, tmp_path: Path) -> None:
    run_training(config, snap, tmp_path / "out", MemoryContext(tmp_path / "work"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: str(tmp / "nowhere"), "base model .*nowhere does not exist on this worker"),
        (lambda tmp: str((tmp / "empty").mkdir() or tmp / "empty"), "folder without config.json"),
        (
            lambda tmp: str((tmp / "w.bin").write_bytes(b"x") and tmp / "w.bin"),
            "is a file but not a .gguf model",
        ),
    ],
)
def test_a_missing_base_model_is_named(
    make: object, message: str, snap: Path, tmp_path: Path
) -> None:
    config = RewardModelConfig(base_model=make(tmp_path), max_steps=1)  # type: ignore[operator]
    with pytest.raises(ModelNotFound, match=message):
        run(config, snap, tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_missing_reference_model_fails_before_training(
    base: Path, snap: Path, tmp_path: Path
) -> None:
    config = DpoConfig(base_model=str(base), reference_model=str(tmp_path / "ref"), max_steps=1)
    ctx = MemoryContext(tmp_path / "work")
    with pytest.raises(ModelNotFound, match=r"reference model .*ref does not exist"):
        run_training(config, snap, tmp_path / "out", ctx)
    assert ctx.checkpoints == [] and not (tmp_path / "work" / "checkpoints").exists()


def test_an_altered_snapshot_is_refused(base: Path, snap: Path, tmp_path: Path) -> None:
    data = snap / "preference.parquet"
    data.write_bytes(data.read_bytes() + b"\0")
    with pytest.raises(TrainingInputError, match="does not match the sha256 in its manifest"):
        run(RewardModelConfig(base_model=str(base), max_steps=1), snap, tmp_path)


def test_a_folder_without_manifest_is_not_a_snapshot(base: Path, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    with pytest.raises(TrainingInputError, match="is not an export snapshot: it has no manifest"):
        run(RewardModelConfig(base_model=str(base)), tmp_path / "junk", tmp_path)
    manifest = tmp_path / "junk" / "manifest.json"
    manifest.write_text(json.dumps({"schema": "nonsense"}))
    with pytest.raises(TrainingInputError, match="is not a valid export manifest"):
        run(RewardModelConfig(base_model=str(base)), tmp_path / "junk", tmp_path)


def test_dpo_refuses_a_ranking_snapshot(base: Path, tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "rank", Schema.ranking, ranking_rows(4))
    with pytest.raises(TrainingInputError, match="dpo trains on a preference export"):
        run(DpoConfig(base_model=str(base), max_steps=1), snap, tmp_path)


def test_sampling_kinds_need_a_backend(base: Path, snap: Path, tmp_path: Path) -> None:
    config = BestOfNConfig(policy=str(base), reward_model=str(base))
    with pytest.raises(TrainingInputError, match="needs a backend factory"):
        run(config, snap, tmp_path)


def test_best_of_n_refuses_a_policy_as_reward_model(base: Path, snap: Path, tmp_path: Path) -> None:
    from tests.training.helpers import ModelBackend

    config = BestOfNConfig.model_validate(
        {"policy": str(base), "reward_model": str(base), "sampling": {"n": 2, "max_new_tokens": 2}}
    )
    with pytest.raises(ModelNotFound, match="not a scalar reward model"):
        run_training(
            config,
            snap,
            tmp_path / "out",
            MemoryContext(tmp_path / "w"),
            backends=lambda path, sampling: ModelBackend(path),
        )
    assert not (tmp_path / "out").exists()


def test_trained_artifacts_hold_no_pickles(base: Path, snap: Path, tmp_path: Path) -> None:
    config = RewardModelConfig(base_model=str(base), max_steps=2, checkpoint_every=1)
    result = run_training(config, snap, tmp_path / "out", MemoryContext(tmp_path / "work"))
    names = set(result.files)
    assert "model.safetensors" in names and "metrics.json" in names and "tokenizer.json" in names
    assert all(Path(n).suffix in {".safetensors", ".json", ".jinja", ".txt"} for n in names), names
    on_disk = {p.name for p in (tmp_path / "out").iterdir()}
    assert on_disk == names | {"run.json"}
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["kind"] == "reward_model" and record["inputs"]["snapshot"]["export_id"] == 1
    assert (
        record["files"]["model.safetensors"]["sha256"]
        == result.files["model.safetensors"]["sha256"]
    )
    # The checkpoints (with optimizer state) stay in the job's work folder, out of the artifacts.
    assert (tmp_path / "work" / "checkpoints" / "checkpoint-2").is_dir()


def test_a_pickle_is_never_published(tmp_path: Path) -> None:
    writer = ArtifactWriter(tmp_path / "out")
    (writer.path("optimizer.pt")).write_bytes(b"\x80\x04")
    with pytest.raises(RuntimeError, match=r"refusing to publish optimizer\.pt"):
        writer.commit({})
    writer.discard()
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())
