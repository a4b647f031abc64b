"""The distill stage on tiny models: student construction, each loss by hand, save/load, export, DDP."""

from __future__ import annotations

import math
import os
import socket

import numpy as np
import pytest
import torch
from rich.console import Console
from tiny import (
    layer_output,
    padded_ids,
    padded_inputs,
    registered_families,
    synthetic_rows,
    tiny_bert_teacher,
    tiny_family_model,
    tiny_tokenizer,
)
from transformers import BertForSequenceClassification

from compress.core.recipe import parse_recipe
from compress.data.tokenization import TextEncoder
from compress.distillation.config import DistillConfig
from compress.distillation.losses import (
    AttentionLoss,
    HiddenLoss,
    LogitsLoss,
    StudentOutputs,
    TeacherTargets,
    relation_kl,
    relation_log_probs,
)
from compress.distillation.run import distill
from compress.distillation.student import StudentSpec, build_student, choose_teacher_layers
from compress.errors import RecipeError, StageError
from compress.models import architectures
from compress.models.families.base import family_for
from compress.models.persistence import load_model, save_model
from compress.tasks.text_classification import TokenExamples
from compress.training.loop import TrainingConfig, train_classifier

QUIET = Console(quiet=True)


# --- student construction ---------------------------------------------------------------------------


def test_teacher_layer_choice():
    assert choose_teacher_layers("uniform", 2, 6) == [2, 5]
    assert choose_teacher_layers("uniform", 3, 6) == [1, 3, 5]
    assert choose_teacher_layers("first", 2, 6) == [0, 1]
    assert choose_teacher_layers([0, 4], 2, 6) == [0, 4]
    with pytest.raises(StageError, match="out of range"):
        choose_teacher_layers([0, 6], 2, 6)
    with pytest.raises(StageError, match="exceed"):
        choose_teacher_layers("uniform", 7, 6)


def test_student_shapes_and_stock_config():
    teacher = tiny_bert_teacher()
    student, init = build_student(teacher, StudentSpec(layers=2, heads=1, ffn=24), padded_inputs())
    assert type(student) is BertForSequenceClassification
    assert student.config.num_hidden_layers == 2 and student.config.num_attention_heads == 1
    assert init.teacher_layers == [1, 3]
    layer = architectures.encoder_layers(student)[0]
    assert layer.intermediate.dense.weight.shape == (24, 32)
    assert layer.output.dense.weight.shape == (32, 24)
    assert architectures.attention_layout(student)[0].heads == 1
    assert torch.equal(
        student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight
    )
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)


def test_copied_layer_reproduces_the_teacher_layer():
    teacher = tiny_bert_teacher()
    student, init = build_student(teacher, StudentSpec(layers=2, heads=4), padded_inputs())
    ids, mask = padded_ids()
    hidden = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    for index, source in enumerate(init.teacher_layers):
        out = layer_output(architectures.encoder_layers(student)[index], hidden[source], mask)
        assert torch.allclose(out[mask.bool()], hidden[source + 1][mask.bool()], atol=1e-6)


def test_merged_head_equals_the_teacher_when_heads_attend_alike():
    """With identical per-head Q/K, one merged head at scale 'mean' attends exactly like every head."""
    teacher = tiny_bert_teacher()
    for layer in architectures.encoder_layers(teacher):
        attention = architectures.self_attention(layer)
        with torch.no_grad():
            for linear in (attention.query, attention.key):
                linear.weight.copy_(linear.weight[:8].repeat(4, 1))
                linear.bias.copy_(linear.bias[:8].repeat(4))
    student, _ = build_student(teacher, StudentSpec(layers=2, heads=1, merge_scale="mean"))
    ids, mask = padded_ids()
    hidden = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    out = layer_output(architectures.encoder_layers(student)[0], hidden[1], mask)
    assert torch.allclose(out[mask.bool()], hidden[2][mask.bool()], atol=1e-5)


def test_merge_scale_is_folded_into_the_query():
    teacher = tiny_bert_teacher()
    source = architectures.self_attention(architectures.encoder_layers(teacher)[1]).query.weight
    for choice, c in (("sum", 1.0), ("mean", 0.25), (0.5, 0.5)):
        student, init = build_student(teacher, StudentSpec(layers=2, heads=1, merge_scale=choice))
        query = architectures.self_attention(architectures.encoder_layers(student)[0]).query.weight
        assert torch.allclose(query, source * c * 2.0)  # sqrt(4 merged heads) = 2
        assert init.merge_scales == [c, c]


def test_auto_merge_scale_is_no_worse_than_the_fixed_choices():
    teacher = tiny_bert_teacher()
    ids, mask = padded_ids()
    with torch.no_grad():
        hidden = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states

    @torch.no_grad()
    def error(choice) -> float:
        student, init = build_student(
            teacher, StudentSpec(layers=2, heads=1, merge_scale=choice), {"input_ids": ids, "attention_mask": mask}
        )
        out = layer_output(architectures.encoder_layers(student)[1], hidden[3], mask)
        return float(((out - hidden[4])[mask.bool()] ** 2).mean())

    assert error("auto") <= min(error("mean"), error("sum"), error("none")) + 1e-9


def test_bad_student_requests_fail_clearly():
    with pytest.raises(StageError, match="hidden size"):
        build_student(tiny_bert_teacher(), StudentSpec(layers=2, hidden=16))
    with pytest.raises(StageError, match="wider"):
        build_student(tiny_bert_teacher(), StudentSpec(layers=2, ffn=1000))
    with pytest.raises(StageError, match="multiple"):
        build_student(tiny_bert_teacher(), StudentSpec(layers=2, heads=3))


# --- losses, checked by hand ----------------------------------------------------------------------------


def _targets(logits=None, hidden=None, mask=None) -> TeacherTargets:
    return TeacherTargets(logits=logits, hidden_states=hidden or {}, mask=mask)


def test_logits_loss_by_hand():
    student = StudentOutputs(logits=torch.tensor([[0.0, 0.0]]))
    teacher = _targets(logits=torch.tensor([[math.log(3.0), 0.0]]))  # p = (3/4, 1/4)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert LogitsLoss(temperature=1.0, hard_label_weight=0.0)(student, teacher, None).item() == pytest.approx(
        kl
    )
    mixed = LogitsLoss(temperature=1.0, hard_label_weight=0.5)(student, teacher, torch.tensor([1]))
    assert mixed.item() == pytest.approx(0.5 * math.log(2) + 0.5 * kl)


def test_embedding_neighbour_loss_by_hand():
    """Three unit vectors: row 0's neighbours are rows 1 (cos 0.8) and 2 (cos 0); a student that swaps rows
    1 and 2 reverses row 0's neighbour order. Each row's KL is summed over its two neighbours."""
    from compress.distillation.losses import EmbeddingNeighbourLoss

    teacher_vectors = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    loss = EmbeddingNeighbourLoss(temperature=0.5)
    assert loss(StudentOutputs(logits=teacher_vectors * 3.0), _targets(logits=teacher_vectors), None).item() == (
        pytest.approx(0.0, abs=1e-6)  # cosines: the scale of a vector does not matter
    )

    def softmax(values):
        exps = [math.exp(v / 0.5) for v in values]
        return [e / sum(exps) for e in exps]

    def kl(p, q):
        return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))

    # cosines to the other two rows, in index order; the student has rows 1 and 2 swapped
    teacher_rows = [[0.8, 0.0], [0.8, 0.6], [0.0, 0.6]]
    student_rows = [[0.0, 0.8], [0.0, 0.6], [0.8, 0.6]]
    expected = sum(kl(softmax(t), softmax(s)) for t, s in zip(teacher_rows, student_rows, strict=True)) / 3
    swapped = teacher_vectors[[0, 2, 1]]
    measured = loss(StudentOutputs(logits=swapped), _targets(logits=teacher_vectors), None).item()
    assert measured == pytest.approx(expected, rel=1e-5)
    assert expected > 0.1


def test_hidden_loss_by_hand_ignores_padding():
    mask = torch.tensor([[1, 1, 0]])
    teacher_hidden = torch.ones(1, 3, 4)
    teacher_hidden[0, 2] = 100.0  # a padded position: must not count
    student = StudentOutputs(logits=None, hidden_states=(None, torch.zeros(1, 3, 4)))
    loss = HiddenLoss([(0, 0)], 4, 4)(student, _targets(hidden={1: teacher_hidden}, mask=mask), None)
    assert loss.item() == pytest.approx(1.0)


def test_hidden_loss_projects_narrower_students():
    loss_fn = HiddenLoss([(0, 2)], student_width=2, teacher_width=4)
    with torch.no_grad():
        loss_fn.projections[0].weight.zero_()
        loss_fn.projections[0].bias.fill_(3.0)
    student = StudentOutputs(logits=None, hidden_states=(None, torch.zeros(1, 2, 2)))
    targets = _targets(hidden={3: torch.ones(1, 2, 4)}, mask=torch.ones(1, 2))
    assert loss_fn(student, targets, None).item() == pytest.approx(4.0)  # (3 - 1)^2
    assert loss_fn.teacher_indices() == {3}


def test_relation_probabilities_and_kl_by_hand():
    a = torch.tensor([[[1.0], [0.0]]])  # two tokens, width 1
    mask = torch.ones(1, 2)
    log_probs = relation_log_probs(a, a, mask, heads=1)
    e = math.e
    assert log_probs.exp()[0, 0].flatten().tolist() == pytest.approx([e / (1 + e), 1 / (1 + e), 0.5, 0.5])
    uniform = torch.full_like(log_probs, math.log(0.5))
    p = e / (1 + e)
    row0 = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    assert relation_kl(uniform, log_probs, mask).item() == pytest.approx(row0 / 2)  # row 1 is already uniform
    masked = relation_log_probs(a, a, torch.tensor([[1, 0]]), heads=1).exp()
    assert masked[0, 0, :, 1].max().item() == 0.0  # padded keys get no probability


def test_attention_loss_is_zero_for_the_teacher_itself_and_positive_otherwise():
    teacher = tiny_bert_teacher()
    ids, mask = padded_ids()
    hidden = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    attention = architectures.self_attention(architectures.encoder_layers(teacher)[2])
    qkv = {"q": attention.query, "k": attention.key, "v": attention.value}
    loss_fn = AttentionLoss([(0, 2)], [qkv], relation_heads=4, relations=["qk", "vv"])
    with torch.no_grad():
        same = {name: linear(hidden[2]) for name, linear in qkv.items()}
    targets = _targets(hidden={2: hidden[2]}, mask=mask)
    assert loss_fn(StudentOutputs(None, (), {0: same}), targets, None).item() == pytest.approx(0.0, abs=1e-6)
    other = {name: torch.randn_like(t) for name, t in same.items()}
    assert loss_fn(StudentOutputs(None, (), {0: other}), targets, None).item() > 0.01
    # a merged single-head student reads the same relations (relation heads are independent of real heads)
    scaled = AttentionLoss([(0, 2)], [qkv], 4, ["qk"], query_scales=[0.5])
    halved = {**same, "q": same["q"] * 0.5}
    assert scaled(StudentOutputs(None, (), {0: halved}), targets, None).item() == pytest.approx(0.0, abs=1e-6)


def test_loss_names_are_validated_up_front():
    with pytest.raises(RecipeError, match="unknown loss 'hiden'"):
        parse_recipe({"name": "x", "stages": [{"distill": {"losses": {"hiden": 1.0}}}]}, "r.yaml")
    with pytest.raises(RecipeError, match="positive weight"):
        parse_recipe({"name": "x", "stages": [{"distill": {"losses": {"logits": 0}}}]}, "r.yaml")
    with pytest.raises(RecipeError, match="anneal_heads .* needs init: teacher_layers"):
        parse_recipe({"name": "x", "stages": [{"distill": {"anneal_heads": 0.5, "init": "random"}}]}, "r.yaml")
    with pytest.raises(RecipeError, match="anneal_heads"):
        parse_recipe({"name": "x", "stages": [{"distill": {"anneal_heads": 1.5}}]}, "r.yaml")


# --- persistence and export ------------------------------------------------------------------------------


def test_student_round_trips_and_exports(tmp_path):
    from compress.onnx.export import export_onnx, max_output_difference

    student, _ = build_student(tiny_bert_teacher(), StudentSpec(layers=2, heads=1, ffn=24), padded_inputs())
    ids, mask = padded_ids()
    expected = student(input_ids=ids, attention_mask=mask).logits
    student.save_pretrained(tmp_path / "hf")
    reloaded = BertForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    assert torch.allclose(reloaded(input_ids=ids, attention_mask=mask).logits, expected, atol=1e-6)
    save_model(student, tmp_path / "compress")
    assert torch.allclose(
        load_model(tmp_path / "compress")(input_ids=ids, attention_mask=mask).logits, expected
    )
    encoded = [row[: int(m.sum())] for row, m in zip(ids.tolist(), mask, strict=True)]
    examples = TokenExamples(encoded, 0)
    onnx_path = export_onnx(student, examples.collate([0, 1]), tmp_path / "student.onnx", 17)
    assert max_output_difference(student, onnx_path, examples) < 1e-4


# --- training: single process and two processes (DDP over gloo) ----------------------------------------


def _task(n: int = 260):
    encoder = TextEncoder(tiny_tokenizer(), 32)
    rows = synthetic_rows(n, seed=1)
    encoded = encoder.encode([t for t, _ in rows])
    labels = [int(label == "pos") for _, label in rows]
    return (TokenExamples(encoded[:200], 0), labels[:200]), (TokenExamples(encoded[200:], 0), labels[200:])


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matrices: extra threads only add contention on a shared machine (157 s -> 5 s here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained_teacher(tmp_path_factory, one_thread):
    train, dev = _task()
    teacher = tiny_bert_teacher(layers=4)
    config = TrainingConfig(epochs=5, learning_rate=3e-3, batch_size=16, patience=0)
    result = train_classifier(teacher, train, dev, config, 0, QUIET)
    assert result.best_dev_accuracy >= 0.9
    path = tmp_path_factory.mktemp("teacher") / "model"
    save_model(teacher, path)
    return path, result.best_dev_accuracy


DISTILL = {
    "layers": 2,
    "epochs": 3,
    "learning_rate": 3e-3,
    "batch_size": 16,
    "patience": 0,
    "losses": {"logits": 1.0, "hidden": 0.5, "attention": 0.5},
    "augment": {"copies": 1, "replace_with": "neighbours"},
}


def _distill(teacher_path):
    train, dev = _task()
    torch.manual_seed(0)
    return distill(load_model(teacher_path), train, dev, {0, 2, 3}, 4, DistillConfig(**DISTILL), 0, QUIET)


def _distill_worker(rank: int, world: int, port: int, teacher_path, out_path) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = _distill(teacher_path)
        if rank == 0:
            torch.save({"dev": result.info["training"]["best_dev_accuracy"]}, out_path)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def single_process(trained_teacher):
    return _distill(trained_teacher[0])


def test_distilled_student_learns_the_task(single_process, trained_teacher):
    info = single_process.info
    assert info["training"]["best_dev_accuracy"] >= trained_teacher[1] - 0.05
    assert info["distillation"]["losses"] == {"logits": 1.0, "hidden": 0.5, "attention": 0.5}
    assert info["distillation"]["augmented_examples"] == 200
    assert single_process.student.config.num_attention_heads == 1


def test_two_processes_match_single_process_quality(single_process, trained_teacher, tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "ddp.pt"
    mp.spawn(_distill_worker, args=(2, port, trained_teacher[0], out), nprocs=2, join=True)
    ddp_dev = torch.load(out)["dev"]
    assert ddp_dev >= single_process.info["training"]["best_dev_accuracy"] - 0.03
    assert np.isfinite(ddp_dev)


def test_report_shows_teacher_and_student_with_loss_weights():
    from compress.reporting.distillation import distillation_section

    shape = {"layers": 2, "heads": 1, "ffn": 768, "hidden": 384, "init": "teacher_layers"}
    facts = {
        "losses": {"logits": 1.0, "hidden": 0.5},
        "loss_options": {"temperature": 2.0, "hard_label_weight": 0.3, "relations": ["qk", "vv"]},
        "student": {**shape, "teacher_layers": [2, 5], "merge_scales": [0.1, 0.2], "anneal_heads": 0.5, "dropout": 0.0},
        "teacher_shape": {"layers": 6, "heads": 12, "ffn": 1536, "hidden": 384},
        "train_examples": 10,
        "augmented_examples": 10,
        "transfer": {"corpus": "imdb_reviews"},
        "transfer_examples": 30,
        "teacher_cache_mb": 1.0,
        "seconds": 5.0,
    }
    report = {
        "variants": [
            {"name": "teacher", "accuracy": 0.82, "parameters": 22_700_000, "info": {}},
            {
                "name": "student",
                "accuracy": 0.81,
                "parameters": 10,
                "info": {"distillation": facts, "teacher": "teacher"},
            },
        ]
    }
    text = "\n".join(distillation_section(report))
    assert "## Distillation: student from teacher" in text
    assert "| test accuracy | 82.00% | 81.00% |" in text
    assert "| layers / heads / FFN / hidden | 6 / 12 / 1536 / 384 | 2 / 1 / 768 / 384 |" in text
    assert "logits x1, hidden x0.5" in text
    assert "10 train texts + 10 teacher-labelled augmented copies + 30 teacher-labelled transfer texts (imdb_reviews)" in text
    assert "heads merged gradually over the first 50% of the steps; dropout 0.0" in text
    assert "relations" not in text  # no attention loss
    facts["losses"]["attention"] = 1.0
    assert "attention relations ['qk', 'vv']" in "\n".join(distillation_section(report))


def test_torchrun_followers_stop_after_the_last_training_stage(monkeypatch, tmp_path):
    from compress.run.pipeline import _up_to_last_training_stage
    from compress.training import distributed

    recipe = parse_recipe(
        {"name": "x", "stages": ["finetune", "export", {"distill": {"from": "teacher"}}, "export", "quantize", "report"]},
        "r.yaml",
    )
    assert [s.id for s in _up_to_last_training_stage(recipe.stages)] == ["finetune", "export", "distill"]
    assert distributed.follower_run_dir(tmp_path / "run") is None  # not launched by torchrun
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert distributed.follower_run_dir(tmp_path / "run") is None  # rank 0 writes the real run
    monkeypatch.setenv("RANK", "1")
    assert distributed.follower_run_dir(tmp_path / "run") == tmp_path / "run.rank1"


def test_bf16_distillation_learns_as_well_and_records_its_precision(trained_teacher, single_process):
    train, dev = _task()
    torch.manual_seed(0)
    config = DistillConfig(**{**DISTILL, "precision": "bf16"})
    result = distill(load_model(trained_teacher[0]), train, dev, {0, 2, 3}, 4, config, 0, QUIET)
    assert result.info["distillation"]["precision"] == "bf16"
    assert result.info["training"]["best_dev_accuracy"] >= single_process.info["training"]["best_dev_accuracy"] - 0.05
    assert all(p.dtype == torch.float32 for p in result.student.parameters())  # autocast, not a bf16 model
    assert single_process.info["distillation"]["precision"] == "fp32"


def test_student_dropout_defaults_to_the_teachers():
    teacher = tiny_bert_teacher()
    teacher.config.hidden_dropout_prob = teacher.config.attention_probs_dropout_prob = 0.2
    default, _ = build_student(teacher, StudentSpec(layers=2))
    assert default.config.hidden_dropout_prob == default.config.attention_probs_dropout_prob == 0.2
    none, _ = build_student(teacher, StudentSpec(layers=2, dropout=0.0))
    assert none.config.hidden_dropout_prob == none.config.attention_probs_dropout_prob == 0.0
    none.train()
    ids, mask = padded_ids()
    assert torch.equal(none(input_ids=ids, attention_mask=mask).logits, none(input_ids=ids, attention_mask=mask).logits)

def test_encoder_names_special_and_mask_ids_for_augmentation():
    encoder = TextEncoder(tiny_tokenizer(), 32)
    assert encoder.special_ids == {0, 1, 2, 3, 4}  # [PAD] [UNK] [CLS] [SEP] [MASK]
    assert encoder.mask_id == 4


def test_teacher_labelled_transfer_texts_teach_a_student_with_few_labels(trained_teacher, one_thread):
    """12 labelled texts teach a randomly initialised student little; 240 unlabelled texts the teacher labels
    teach it the task (the transfer set carries the teacher's function, not just more of the same labels)."""
    train, dev = _task()
    few = (train[0].head(12), train[1][:12])
    encoder = TextEncoder(tiny_tokenizer(), 32)
    unlabelled = TokenExamples(encoder.encode([text for text, _ in synthetic_rows(240, seed=7)]), 0)
    config = DistillConfig(**{**DISTILL, "init": "random", "epochs": 6, "augment": {"copies": 0}})

    def dev_accuracy(transfer) -> tuple[float, dict]:
        torch.manual_seed(0)
        result = distill(load_model(trained_teacher[0]), few, dev, {0, 2, 3}, 4, config, 0, QUIET, transfer=transfer)
        return result.info["training"]["best_dev_accuracy"], result.info["distillation"]

    alone, _ = dev_accuracy(None)
    with_transfer, info = dev_accuracy(unlabelled)
    assert info["transfer_examples"] == 240 and info["train_examples"] == 12
    assert with_transfer >= 0.85
    assert with_transfer >= alone + 0.15


def test_recipe_distills_with_a_transfer_file_and_reports_it(tiny_recipe, synthetic_csv, tmp_path, one_thread):
    import json

    from compress.core.recipe import DataConfig
    from compress.data.sources import load_task
    from compress.run.pipeline import run_recipe

    held_out = load_task(DataConfig(dataset=str(synthetic_csv), test_size=100, dev_size=100)).test.texts[:5]
    corpus = tmp_path / "unlabelled.txt"
    lines = [f"{text} and {extra}" for (text, _), extra in zip(synthetic_rows(150, seed=9), range(150), strict=True)]
    corpus.write_text("\n".join([*lines, *held_out]) + "\n", encoding="utf-8")
    distill_options = {"layers": 1, "epochs": 1, "batch_size": 16, "transfer": {"corpus": str(corpus), "texts": 1000}}
    stages = [{"finetune": {"epochs": 1, "batch_size": 16}}, {"distill": distill_options}, "report"]
    result = run_recipe(parse_recipe(tiny_recipe(stages), "tiny.yaml"), out=tmp_path / "run")
    state = json.loads((result.run_dir / "state.json").read_text())
    facts = next(v for v in state["variants"] if v["name"] == "student")["info"]["distillation"]
    assert facts["transfer_examples"] == 150  # every line but the 5 test texts
    assert facts["transfer"]["corpus"] == str(corpus)
    assert "150 teacher-labelled transfer texts" in (result.run_dir / "report.md").read_text()


def test_head_annealing_distils_as_well_and_leaves_a_stock_student(trained_teacher, single_process):
    train, dev = _task()
    torch.manual_seed(0)
    config = DistillConfig(**{**DISTILL, "anneal_heads": 0.5})
    result = distill(load_model(trained_teacher[0]), train, dev, {0, 2, 3}, 4, config, 0, QUIET)
    assert result.info["distillation"]["student"]["anneal_heads"] == 0.5
    assert result.info["training"]["best_dev_accuracy"] >= single_process.info["training"]["best_dev_accuracy"] - 0.05
    for layer in architectures.encoder_layers(result.student):
        assert "forward" not in vars(architectures.self_attention(layer))
    assert type(result.student) is BertForSequenceClassification
    assert result.student.config.num_attention_heads == 1


@pytest.mark.parametrize("family", [f for f in registered_families() if family_for(f).supports("distill")])
def test_every_distillable_family_trains_an_annealed_one_head_student_that_exports(family, one_thread, tmp_path):
    """Fine-tune a tiny teacher of the family, distil a 2-layer one-head student with head annealing and all
    three losses, then check it learnt the task, is a stock model of the family and exports with parity."""
    from compress.onnx.export import export_onnx, max_output_difference

    train, dev = _task()
    torch.manual_seed(0)
    teacher = tiny_family_model(family, layers=4)
    fit = train_classifier(teacher, train, dev, TrainingConfig(epochs=5, learning_rate=3e-3, batch_size=16, patience=0), 0, QUIET)
    assert fit.best_dev_accuracy >= 0.85, family
    config = DistillConfig(**{**DISTILL, "anneal_heads": 0.5, "augment": {"copies": 0}})
    result = distill(teacher, train, dev, {0, 2, 3}, 4, config, 0, QUIET)
    student = result.student
    facts = result.info["distillation"]["student"]
    assert (facts["layers"], facts["heads"], facts["ffn"]) == (2, 1, family_for(teacher).ffn_width(teacher.config))
    assert result.info["training"]["best_dev_accuracy"] >= fit.best_dev_accuracy - 0.1
    assert type(student) is type(teacher) and student.config.num_attention_heads == 1
    for layer in family_for(student).encoder_layers(student):
        assert "forward" not in vars(family_for(student).self_attention(layer))
    examples = dev[0]
    onnx_path = export_onnx(student.eval(), examples.collate([0, 1, 2]), tmp_path / "student.onnx", 17)
    assert max_output_difference(student, onnx_path, examples) < 1e-4
