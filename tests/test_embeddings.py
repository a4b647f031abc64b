"""Issue 18: the sentence-embedding task on tiny random embedders (and one real MiniLM integration test)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from tiny import make_sentence_transformers_dir, synthetic_rows, write_csv, write_texts

from compress.core.sections import ModelConfig, TaskConfig
from compress.tasks import get_task
from compress.tasks.sentence_embedding import (
    SentenceEmbedder,
    cross_validated_probe,
    embedding_scores,
    linear_probe,
    neighbour_recall,
    teacher_agreement,
)

TEXTS = [text for text, _ in synthetic_rows(12, seed=3)]


@pytest.fixture(scope="module")
def st_dir(tmp_path_factory):
    return make_sentence_transformers_dir(tmp_path_factory.mktemp("st") / "embedder")


def _encoded(directory, texts=TEXTS):
    task = get_task("sentence-embedding")
    examples = task.encode(task.processor(directory, 32), texts)
    return examples.collate(range(len(texts)))


def _reference(directory, inputs, pooling="mean", normalize=True):
    """sentence-transformers' computation by hand: AutoModel token vectors, masked mean (or CLS), L2 norm."""
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(directory)).eval()
    with torch.no_grad():
        hidden = encoder(**{k: torch.from_numpy(v) for k, v in inputs.items()}).last_hidden_state
    mask = torch.from_numpy(inputs["attention_mask"]).unsqueeze(-1).float()
    pooled = hidden[:, 0] if pooling == "cls" else (hidden * mask).sum(1) / mask.sum(1)
    return (torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled).numpy()


def _load(directory, **options):
    task = get_task("sentence-embedding")
    return task.load_model(ModelConfig(source=str(directory)), None, TaskConfig(kind=task.name, **options))


def _cosines(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_pooling_follows_the_folder_and_matches_a_reference(tmp_path, pooling):
    directory = make_sentence_transformers_dir(tmp_path / pooling, pooling=pooling, normalize=pooling == "mean")
    loaded = _load(directory)
    assert isinstance(loaded.module, SentenceEmbedder)
    assert loaded.module.pooling == pooling and loaded.module.normalize == (pooling == "mean")
    inputs = _encoded(directory)
    assert inputs["attention_mask"].min() == 0  # padded rows: mean pooling must skip the padding
    with torch.no_grad():
        vectors = loaded.module(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    reference = _reference(directory, inputs, pooling, normalize=pooling == "mean")
    assert _cosines(vectors, reference).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=-1), np.linalg.norm(reference, axis=-1), rtol=1e-4)


def test_task_options_override_the_folder(st_dir):
    loaded = _load(st_dir, pooling="cls", normalize=False)
    assert (loaded.module.pooling, loaded.module.normalize) == ("cls", False)


def test_export_puts_pooling_and_normalisation_into_the_graph(st_dir, tmp_path):
    import onnxruntime as ort

    from compress.onnx.export import export_onnx

    loaded = _load(st_dir)
    inputs = _encoded(st_dir)
    path = export_onnx(loaded.module, inputs, tmp_path / "embedder.onnx", 17, ("sentence_embedding",))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["sentence_embedding"]
    (vectors,) = session.run(None, inputs)
    assert vectors.shape == (len(TEXTS), 32)
    assert _cosines(vectors, _reference(st_dir, inputs)).min() >= 0.9999


def test_saved_embedder_loads_back_with_its_pooling(st_dir, tmp_path):
    from compress.models.persistence import load_model, save_model

    loaded = _load(st_dir, pooling="cls")
    save_model(loaded.module, tmp_path / "saved")
    again = load_model(tmp_path / "saved")
    assert isinstance(again, SentenceEmbedder) and again.pooling == "cls"
    inputs = {k: torch.from_numpy(v) for k, v in _encoded(st_dir).items()}
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs).logits, loaded.module(**inputs).logits)


# --- metrics on hand-made vectors -----------------------------------------------------------------------


def test_agreement_mean_and_p5_cosine():
    reference = np.eye(4)[:, :3][:3].repeat(1, axis=0)  # three unit vectors along x, y, z
    same = reference * 5.0  # scale does not matter
    assert teacher_agreement(same, reference) == pytest.approx((1.0, 1.0))
    rotated = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]])  # last row opposite: cosines 1, 1, -1
    mean, p5 = teacher_agreement(rotated, reference)
    assert mean == pytest.approx(1 / 3)
    assert p5 == pytest.approx(np.percentile([1, 1, -1], 5))


def test_neighbour_recall_on_points_with_known_neighbours():
    line = np.stack([np.cos(np.linspace(0, 1.5, 12)), np.sin(np.linspace(0, 1.5, 12))], axis=1)
    assert neighbour_recall(line, line, k=3) == 1.0
    # reversing the angles keeps every neighbourhood: recall 1; shuffling the rows' vectors breaks it
    assert neighbour_recall(line[:, ::-1], line, k=3) == 1.0
    shuffled = line[np.random.default_rng(0).permutation(12)]
    assert neighbour_recall(shuffled, line, k=3) < 0.6
    # two of a query's three neighbours kept: x=0 has neighbours 1, 2, 3 on the reference line
    points = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    moved = np.array([[0.0], [1.0], [2.0], [30.0], [2.5]])  # 3 leaves, 4 (x=10 -> 2.5) comes in
    assert neighbour_recall(np.hstack([points, np.ones_like(points)]), np.hstack([points, np.ones_like(points)]),
                            k=3, queries=1) == 1.0
    recall = neighbour_recall(_on_circle(moved), _on_circle(points), k=3, queries=1)
    assert recall == pytest.approx(2 / 3)


def _on_circle(x):
    """1-D positions as angles on a quarter circle, so cosine order is position order."""
    angle = x[:, 0] / 40.0
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def test_linear_probe_separates_separable_classes_and_not_noise():
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 2
    vectors = rng.normal(size=(200, 8)) + labels[:, None] * 4.0
    assert linear_probe(vectors[:100], labels[:100], vectors[100:], labels[100:]) == 1.0
    noise = rng.normal(size=(200, 8))
    assert linear_probe(noise[:100], labels[:100], noise[100:], labels[100:]) < 0.75


def test_cross_validated_probe_predicts_every_row_once_with_a_probe_not_fitted_on_it():
    rng = np.random.default_rng(2)
    labels = np.arange(200) % 2
    separable = rng.normal(size=(200, 8)) + labels[:, None] * 4.0
    assert cross_validated_probe(separable, labels) == 1.0
    # random labels on 150-dimensional noise: a probe that had seen a row could memorise it (200 rows), so
    # near-chance accuracy shows each fold is predicted by a probe fitted only on the other folds
    noise = rng.normal(size=(200, 150))
    random_labels = rng.integers(0, 2, size=200)
    assert linear_probe(noise, random_labels, noise, random_labels) > 0.95  # seen rows are memorised
    assert cross_validated_probe(noise, random_labels) < 0.65


def test_scores_name_recall_first_and_probe_only_with_labels():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 6))
    scores = embedding_scores(vectors, vectors, [0] * 40)
    assert list(scores) == ["recall_at_10", "cosine_mean", "cosine_p5"]
    assert scores["recall_at_10"] == 1.0 and scores["cosine_mean"] == pytest.approx(1.0)
    labelled = embedding_scores(vectors, vectors, [i % 2 for i in range(40)])
    assert "probe_accuracy" in labelled
    assert get_task("sentence-embedding").metric_names[0] == "recall_at_10"


def test_unlabelled_texts_are_enough(tmp_path):
    task = get_task("sentence-embedding")
    from compress.core.sections import DataConfig

    splits = task.load_splits(DataConfig(dataset=str(write_texts(tmp_path / "t.txt", 300)), test_size=50, dev_size=50))
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (200, 50, 50)
    labelled = task.load_splits(DataConfig(dataset=str(write_csv(tmp_path / "l.csv", synthetic_rows(300))),
                                           test_size=50, dev_size=50))
    assert labelled.label_names == ("neg", "pos")


# --- stages on an embedder: one short run ---------------------------------------------------------------


@pytest.fixture(scope="module")
def embedding_run(st_dir, tmp_path_factory):
    from tiny import quiet_console

    from compress.run.pipeline import run_recipe

    root = tmp_path_factory.mktemp("embed-run")
    recipe = {
        "name": "tiny-embed",
        "model": {"source": str(st_dir), "max_length": 32},
        "data": {"dataset": str(write_csv(root / "rows.csv", synthetic_rows(400))), "test_size": 100, "dev_size": 50},
        "task": {"kind": "sentence-embedding"},
        "stages": [
            {"distill": {"layers": 1, "heads": 1, "epochs": 2, "batch_size": 32,
                         "losses": {"embedding_cosine": 1.0, "hidden": 1.0}}},
            {"vocab_prune": {}},
            {"export": {"optimize": False}},
            {"quantize": {"mode": "dynamic"}},
            {"evaluate": {"seq_lengths": [16], "batch_sizes": [1], "rounds": 3, "warmup": 0,
                          "memory": False}},
            "bundle",
            "report",
        ],
    }
    from compress.core.recipe import parse_recipe

    console, _ = quiet_console()
    return run_recipe(parse_recipe(recipe), out=root / "run", console=console)


def test_distill_export_quantize_evaluate_bundle_on_an_embedder(embedding_run):
    import json

    report = json.loads((embedding_run.run_dir / "report.json").read_text())
    rows = {row["name"]: row for row in report["variants"]}
    teacher = rows["teacher"]
    assert teacher["recall_at_10"] == 1.0 and teacher["cosine_mean"] == pytest.approx(1.0)
    student_rows = [name for name in rows if name.startswith("student") and "[" not in name]
    assert student_rows
    for name in student_rows:
        row = rows[name]
        assert 0.0 <= row["recall_at_10"] <= 1.0 and -1.0 <= row["cosine_p5"] <= row["cosine_mean"] <= 1.0
        assert 0.0 <= row["probe_accuracy"] <= 1.0 and row["accuracy"] is None
    manifest = json.loads((embedding_run.bundle_dir / "manifest.json").read_text())
    assert (manifest["task"], manifest["pooling"], manifest["normalize"], manifest["dim"]) == (
        "sentence-embedding", "mean", True, 32)
    assert manifest["recall_at_10"] == rows[manifest["variant"]]["recall_at_10"]


def test_compress_embed_on_a_bundle(embedding_run, tmp_path):
    from typer.testing import CliRunner

    import compress
    from compress.cli import app

    texts = ["a great film", "a dull and tedious plot"]
    vectors = compress.embed(embedding_run.bundle_dir, texts)
    assert vectors.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    runner = CliRunner()
    printed = runner.invoke(app, ["embed", str(embedding_run.bundle_dir), *texts])
    assert printed.exit_code == 0, printed.output
    lines = printed.output.strip().splitlines()
    np.testing.assert_allclose(np.array([[float(v) for v in line.split()] for line in lines]), vectors, atol=1e-5)
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    saved = runner.invoke(app, ["embed", str(embedding_run.bundle_dir), "--file", str(tmp_path / "texts.txt"),
                                "--out", str(tmp_path / "v.npy")])
    assert saved.exit_code == 0, saved.output
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), vectors, atol=1e-6)


def test_distillation_keeps_the_epoch_closest_to_the_teacher_and_vocab_prune_runs(embedding_run):
    """The dev check scores recall@10 against the teacher's dev vectors (unlabelled data would score 0 and
    keep the untrained student of epoch 0); vocab_prune slices the embedder's word embeddings."""
    import json

    state = json.loads((embedding_run.run_dir / "state.json").read_text())
    infos = {variant["name"]: variant["info"] for variant in state["variants"]}
    training = infos["student"]["training"]
    assert training["best_epoch"] >= 1 and 0.0 < training["best_dev_accuracy"] <= 1.0
    assert all(0.0 < row["dev_accuracy"] <= 1.0 for row in training["history"])
    vocabulary = infos["student-vocab"]["vocabulary"]
    assert vocabulary["kept_size"] <= vocabulary["original_size"] and vocabulary["test"]["texts"] == 100


def _recipe_file(tmp_path, source, stages, **top):
    import yaml

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "r", "model": {"source": str(source)},
                                    "data": {"dataset": "rotten_tomatoes"}, "stages": stages, **top}))
    return path


def test_validate_refuses_bundling_an_untrained_classification_head(st_dir, tmp_path):
    from tiny import make_checkpoint
    from typer.testing import CliRunner

    from compress import validate_recipe
    from compress.cli import app
    from compress.errors import RecipeError

    untrained = _recipe_file(tmp_path, st_dir, [{"export": {}}, "bundle"])
    with pytest.raises(RecipeError, match="would bundle an untrained classification head: the model's config "
                                          "declares BertModel"):
        validate_recipe(untrained)
    refused = CliRunner().invoke(app, ["validate", str(untrained)])
    assert refused.exit_code == 2 and "untrained classification head" in refused.output
    assert "Traceback" not in refused.output
    validate_recipe(_recipe_file(tmp_path, st_dir, [{"finetune": {"epochs": 1}}, {"export": {}}, "bundle"]))
    validate_recipe(_recipe_file(tmp_path, st_dir, [{"export": {}}, "bundle"], task={"kind": "sentence-embedding"}))
    validate_recipe(_recipe_file(tmp_path, make_checkpoint(tmp_path / "classifier"), [{"export": {}}, "bundle"]))


def test_stages_that_train_on_labels_are_refused_for_embeddings(st_dir, tmp_path):
    from compress import validate_recipe
    from compress.errors import RecipeError

    embedding = {"kind": "sentence-embedding"}
    with pytest.raises(RecipeError, match="stage 'finetune' does not support unlabelled sentence embeddings"):
        validate_recipe(_recipe_file(tmp_path, st_dir, [{"finetune": {"epochs": 1}}], task=embedding))
    refused = {
        "importance 'taylor'": {"ffn": 0.5, "importance": "taylor"},
        "hidden (it would change the embedding width": {"hidden": 0.5},
        "recover.distill_from_unpruned: false": {"ffn": 0.5, "recover": {"distill_from_unpruned": False}},
    }
    for reason, options in refused.items():
        with pytest.raises(RecipeError, match=f"pruning a sentence embedder cannot use {re.escape(reason)}"):
            validate_recipe(_recipe_file(tmp_path, st_dir, [{"prune": options}], task=embedding))
    validate_recipe(_recipe_file(tmp_path, st_dir, [{"prune": {"ffn": 0.5, "heads": 0.5}}], task=embedding))


def test_a_pruned_embedder_recovers_by_distilling_the_unpruned_vectors(tmp_path):
    """Prune heads and FFN of a tiny embedder twice, once without recovery and once with it: recovery
    (1 - cosine to the unpruned model's vectors, best epoch by dev recall@10 against them) brings the
    vectors back towards the teacher's, and the pruned embedder keeps its width and pooling."""
    import json

    from tiny import quiet_console

    from compress.core.recipe import parse_recipe
    from compress.run.pipeline import run_recipe

    prune = {"heads": 0.5, "ffn": 0.5}
    source = make_sentence_transformers_dir(tmp_path / "embedder", layer_scale=8.0)
    recipe = {
        "name": "tiny-embed-prune",
        "model": {"source": str(source), "max_length": 32},
        "data": {"dataset": str(write_csv(tmp_path / "rows.csv", synthetic_rows(400))), "test_size": 100, "dev_size": 100},
        "task": {"kind": "sentence-embedding"},
        "stages": [
            {"prune": {**prune, "name": "pruned-raw", "recover": {"epochs": 0}}},
            {"prune": {**prune, "from": "teacher", "name": "pruned",
                       "recover": {"epochs": 4, "learning_rate": 2e-3, "batch_size": 16, "patience": 0}}},
            {"evaluate": {"seq_lengths": [16], "batch_sizes": [1], "rounds": 3, "warmup": 0, "memory": False,
                          "runtimes": ["torch"]}},
            "report",
        ],
    }
    console, output = quiet_console()
    result = run_recipe(parse_recipe(recipe), out=tmp_path / "run", console=console)
    assert "recovered: best dev recall_at_10" in output.getvalue()
    rows = {row["name"]: row for row in json.loads((result.run_dir / "report.json").read_text())["variants"]}
    raw, recovered = rows["pruned-raw"], rows["pruned"]
    assert recovered["recall_at_10"] > raw["recall_at_10"] + 0.05, (raw, recovered)  # 0.379 -> 0.501 here
    assert recovered["cosine_mean"] > raw["cosine_mean"], (raw, recovered)
    state = json.loads((result.run_dir / "state.json").read_text())
    info = next(v["info"] for v in state["variants"] if v["name"] == "pruned")
    assert info["pruning"]["after"]["ffn"] < info["pruning"]["before"]["ffn"]
    assert info["training"]["best_epoch"] >= 1


@pytest.mark.integration
def test_real_minilm_bundle_matches_sentence_transformers_pooling_and_a_student_distils(tmp_path):
    """The embedded all-MiniLM-L6-v2 on 200 IMDb sentences: the FP32 ONNX teacher's bundle gives the vectors
    of a reference mean pooling + normalisation (cosine >= 0.9999), and a 2-layer student distils from it."""
    import json

    from tiny import quiet_console
    from transformers import AutoModel, AutoTokenizer

    import compress
    from compress.core.recipe import parse_recipe
    from compress.models.sources import embedded_model_dir
    from compress.run.pipeline import run_recipe

    recipe = parse_recipe({
        "name": "real-embed",
        "model": {"source": "minilm", "max_length": 128},
        "data": {"dataset": "imdb_reviews", "limit": 200, "test_size": 50, "dev_size": 50},
        "task": {"kind": "sentence-embedding"},
        "stages": [
            {"export": {"name": "teacher-onnx"}},
            "bundle",
            {"distill": {"from": "teacher", "layers": 2, "heads": 1, "epochs": 1, "batch_size": 32,
                         "losses": {"embedding_cosine": 1.0, "hidden": 1.0}}},
        ],
    })
    console, _ = quiet_console()
    result = run_recipe(recipe, out=tmp_path / "run", console=console)
    texts = ["a great film with a moving story", "the plot was dull and the acting worse", "I want my money back",
             "one of the best performances of the decade, and a soundtrack to match"]
    vectors = compress.embed(result.bundle_dir, texts)
    directory = embedded_model_dir()
    tokenizer, encoder = AutoTokenizer.from_pretrained(str(directory)), AutoModel.from_pretrained(str(directory)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    reference = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    assert vectors.shape == (4, 384)
    assert _cosines(vectors, reference).min() >= 0.9999
    state = json.loads((result.run_dir / "state.json").read_text())
    training = next(v["info"]["training"] for v in state["variants"] if v["name"] == "student")
    assert training["best_epoch"] == 1 and 0.0 < training["best_dev_accuracy"] <= 1.0


def test_report_tables_show_recall_not_an_empty_accuracy_for_embeddings(embedding_run):
    markdown = (embedding_run.run_dir / "report.md").read_text()
    assert "| variant | runtime | precision | test recall_at_10 | vs baseline |" in markdown
    assert "| teacher | torch | fp32 | 1.0000 | +0.0000 |" in markdown


def test_accuracy_aware_quantization_budgets_recall_against_the_fp32_vectors(tmp_path):
    """For an embedder the budget is counted in dev recall@10 against the FP32 graph's own vectors: the
    baseline is 1.0 and every trial scores how many of the FP32 neighbours it keeps (before, the trials
    were scored by a probe accuracy the budget was never meant for)."""
    import json

    from tiny import quiet_console

    from compress.core.recipe import parse_recipe
    from compress.run.pipeline import run_recipe

    source = make_sentence_transformers_dir(tmp_path / "embedder", layer_scale=8.0)
    recipe = {
        "name": "tiny-embed-int8",
        "model": {"source": str(source), "max_length": 32},
        "data": {"dataset": str(write_texts(tmp_path / "texts.txt", 400)), "test_size": 100, "dev_size": 100},
        "task": {"kind": "sentence-embedding"},
        "stages": [{"export": {}}, {"quantize": {"mode": "dynamic", "max_accuracy_drop": 1.0, "trial_latency_rounds": 3}}],
    }
    console, output = quiet_console()
    result = run_recipe(parse_recipe(recipe), out=tmp_path / "run", console=console)
    state = json.loads((result.run_dir / "state.json").read_text())
    search = next(v["info"]["quantization"] for v in state["variants"] if v["precision"] == "int8")
    assert search["baseline_dev_accuracy"] == 1.0
    scores = [trial["dev_accuracy"] for trial in search["trials"]]
    assert scores and all(0.0 < score <= 1.0 for score in scores)
    assert search["met_budget"] == (search["dev_accuracy"] >= 0.99 - 1e-12)
    assert "accuracy-aware" in output.getvalue()
