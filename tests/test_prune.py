"""The prune stage on tiny BERT / DistilBERT / RoBERTa: every dimension, persistence, export, attention."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny import registered_families, tiny_config

from compress.core.recipe import parse_recipe
from compress.errors import CompressError, RecipeError
from compress.models import architectures as arch
from compress.models.families import family_for
from compress.models.persistence import load_model, save_model
from compress.pruning.selection import evenly_kept_layers, removal_counts
from compress.pruning.spec import PruningSpec
from compress.pruning.structured import prune_model, shape_summary
from compress.run.pipeline import run_recipe

FAMILIES = [f for f in registered_families() if family_for(f).supports("prune")]
"""Every registered model family that declares ``prune``: a new family's adapter is tested by registering it."""


def allowed(family: str, *dimensions: str) -> bool:
    return not set(dimensions) & set(family_for(family).prune_refusals)


def tiny_model(family: str, layers: int = 2, seed: int = 0):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(tiny_config(family, layers=layers)).eval()


def batch(seed: int = 1, n: int = 4, length: int = 12):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 40, (n, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0  # one padded row, so masking is exercised
    return ids, mask


def prune(model, calibration=(), **spec):
    ids, mask = batch()
    return prune_model(
        model, PruningSpec(**spec), {"input_ids": ids[:2], "attention_mask": mask[:2]}, calibration
    )


def logits(model, ids, mask):
    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask).logits


def assert_bookkeeping_matches_linears(model) -> None:
    for layer, layout in zip(arch.encoder_layers(model), arch.attention_layout(model), strict=True):
        q, k, v = arch.attention_projections(layer)
        assert q.out_features == k.out_features == v.out_features == layout.heads * layout.head_size
        attn = arch.self_attention(layer)
        width = attn.dim if hasattr(attn, "n_heads") else attn.all_head_size
        assert width == layout.heads * layout.head_size


# family -> dimension -> (spec, expected shape summary of a 2-layer, 4-head x 8, ffn 64, hidden 32 model)
DIMENSIONS = {
    "heads": (
        {"heads": 0.5},
        {"heads": [2, 2], "head_size": [8, 8], "ffn": [64, 64], "layers": 2, "hidden": 32},
    ),
    "head_dims": ({"head_dims": 0.5}, {"heads": [4, 4], "head_size": [4, 4], "ffn": [64, 64], "layers": 2}),
    "ffn": ({"ffn": 0.25}, {"heads": [4, 4], "head_size": [8, 8], "ffn": [48, 48], "layers": 2}),
    "layers": ({"layers": [0]}, {"heads": [4], "head_size": [8], "ffn": [64], "layers": 1}),
    "hidden": ({"hidden": 0.5}, {"heads": [4, 4], "head_size": [8, 8], "ffn": [64, 64], "hidden": 16}),
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dimension", list(DIMENSIONS))
def test_each_dimension_prunes_each_family(family, dimension):
    spec, expected = DIMENSIONS[dimension]
    model = tiny_model(family)
    if not allowed(family, dimension):  # refused up front, naming the family, the dimension and why
        reason = family_for(family).prune_refusals[dimension]
        with pytest.raises(CompressError) as refused:
            prune(model, **spec)
        assert f"model family '{family}' cannot prune {dimension} ({reason}); it can prune" in str(refused.value)
        return
    before = sum(p.numel() for p in model.parameters())
    ids, mask = batch()
    reference = logits(model, ids, mask)
    shapes = prune(model, **spec)
    assert {key: shapes["after"][key] for key in expected} == expected
    assert shapes["before"]["heads"] == [4, 4]
    assert_bookkeeping_matches_linears(model)
    assert sum(p.numel() for p in model.parameters()) < before
    out = logits(model, ids, mask)
    assert out.shape == reference.shape and torch.isfinite(out).all()
    assert model.config.num_hidden_layers == shapes["after"]["layers"]
    assert model.config.hidden_size == shapes["after"]["hidden"]


def test_global_scope_ranks_heads_across_layers_per_layer_does_not():
    def model_with_three_dead_heads():
        model = tiny_model("bert")
        query, key, value = arch.attention_projections(arch.encoder_layers(model)[0])
        with torch.no_grad():
            for linear in (query, key, value):
                linear.weight[8:] = 0  # heads 1-3 of layer 0 contribute nothing
                linear.bias[8:] = 0
        return model

    glob = model_with_three_dead_heads()
    assert prune(glob, heads=4, scope="global")["after"]["heads"] == [1, 3]
    local = model_with_three_dead_heads()
    assert prune(local, heads=0.5, scope="per_layer")["after"]["heads"] == [2, 2]
    # the surviving head of layer 0 is the live one: its query weights are the old head 0's
    original = model_with_three_dead_heads()
    kept = arch.attention_projections(arch.encoder_layers(glob)[0])[0].weight
    torch.testing.assert_close(
        kept, arch.attention_projections(arch.encoder_layers(original)[0])[0].weight[:8]
    )


def test_round_to_keeps_widths_multiples():
    model = tiny_model("bert")
    shapes = prune(model, ffn=0.3, head_dims=0.3, round_to=4)["after"]
    assert shapes["ffn"] == [44, 44]  # 64 - round(19.2) = 45 -> 44
    assert shapes["head_size"] == [4, 4]  # 8 - round(2.4) = 6 -> 4
    assert_bookkeeping_matches_linears(model)


def test_removal_counts_rules():
    scores = [torch.tensor([0.1, 0.2, 5.0, 6.0]), torch.tensor([3.0, 4.0, 7.0, 8.0])]
    assert removal_counts(scores, 0.5, "per_layer") == [2, 2]
    assert removal_counts(scores, 0.5, "global") == [2, 2]
    assert removal_counts(scores, 3, "global") == [2, 1]
    assert removal_counts(scores, 7, "global") == [3, 3]  # every layer keeps one
    assert removal_counts([torch.arange(64.0)], 0.3, "per_layer", round_to=8) == [24]


def test_dropping_layers_by_index_and_count():
    assert evenly_kept_layers(6, 3) == [0, 2, 5]
    model = tiny_model("roberta", layers=4)
    original = [copy.deepcopy(layer.state_dict()) for layer in arch.encoder_layers(model)]
    prune(model, layers=[1, 2])
    kept = arch.encoder_layers(model)
    assert len(kept) == 2 and model.config.num_hidden_layers == 2
    for layer, index in zip(kept, [0, 3], strict=True):
        for name, tensor in layer.state_dict().items():
            torch.testing.assert_close(tensor, original[index][name])
    counted = tiny_model("distilbert", layers=4)
    prune(counted, layers=2)
    assert len(arch.encoder_layers(counted)) == 2 and counted.distilbert.transformer.n_layers == 2


@pytest.mark.parametrize("family", FAMILIES)
def test_non_uniform_pruned_model_round_trips(family, tmp_path):
    model = tiny_model(family, layers=3)
    calibration = [(dict(zip(("input_ids", "attention_mask"), batch(seed=5, n=8), strict=True)), torch.tensor([0, 1] * 4))]
    attention = {"heads": 5, "head_dims": 0.25} if allowed(family, "heads", "head_dims") else {}
    shapes = prune(model, calibration, **attention, ffn=0.4, layers=[1], scope="global", importance="taylor")["after"]
    assert len(set(shapes["ffn"])) > 1 or len(set(shapes["heads"])) > 1  # really non-uniform
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    ids, mask = batch(seed=3)
    torch.testing.assert_close(logits(loaded, ids, mask), logits(model, ids, mask), rtol=0, atol=0)
    assert shape_summary(loaded) == shapes
    assert arch.attention_layout(loaded) == arch.attention_layout(model)


@pytest.mark.parametrize("family", [f for f in FAMILIES if allowed(f, "heads", "head_dims")])
def test_pruned_attention_matches_reference_computation(family):
    model = tiny_model(family)
    prune(model, heads=0.5, head_dims=0.25)  # 2 heads of 6 dims per layer, known without the bookkeeping
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 7, 32, generator=generator)
    additive = torch.zeros(2, 1, 1, 7)
    additive[1, ..., 5:] = torch.finfo(torch.float32).min  # second sequence: last two tokens are padding
    for layer in arch.encoder_layers(model):
        attn = arch.self_attention(layer)
        q_lin, k_lin, v_lin = arch.attention_projections(layer)
        assert q_lin.out_features == 2 * 6

        def split(x):
            return x.view(2, 7, 2, 6).transpose(1, 2)

        q, k, v = split(q_lin(hidden)), split(k_lin(hidden)), split(v_lin(hidden))
        scale = 8**-0.5  # the head size the model was trained with (see compress.pruning.structured)
        weights = torch.softmax(q @ k.transpose(-1, -2) * scale + additive, dim=-1)
        expected = (weights @ v).transpose(1, 2).reshape(2, 7, -1)
        if hasattr(attn, "out_lin"):  # DistilBERT's attention module applies its output projection itself
            expected = attn.out_lin(expected)
        with torch.inference_mode():
            actual = attn(hidden, attention_mask=additive)[0]
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_unsupported_architecture_is_named():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    model = GPT2ForSequenceClassification(
        GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, pad_token_id=0)
    )
    with pytest.raises(CompressError, match="gpt2"):
        prune(model, heads=0.5)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"heads": 1.5}, "heads must be a fraction"),
        ({"ffn": 3}, "ffn must be a fraction"),
        ({"heads": 0}, "nothing to prune"),
        ({"ffn": 0.5, "importance": "fisher"}, "importance"),
        ({"ffn": 0.5, "recover": {"epoch": 1}}, "unknown field"),
    ],
)
def test_invalid_prune_options_name_the_field(tiny_recipe, options, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(tiny_recipe([{"prune": options}]), "tiny.yaml")


def test_bad_layer_indices_and_taylor_without_data_fail_clearly():
    with pytest.raises(CompressError, match="out of range"):
        prune(tiny_model("bert"), layers=[5])
    with pytest.raises(CompressError, match="at least one must stay"):
        prune(tiny_model("bert"), layers=2)
    with pytest.raises(CompressError, match="calibration"):
        prune(tiny_model("bert"), ffn=0.5, importance="taylor")


def test_prune_stage_exports_quantizes_and_reloads(tiny_recipe, tmp_path):
    stages = [
        {"finetune": {"epochs": 2, "learning_rate": 3e-3, "batch_size": 16, "patience": 0}},
        {"export": {}},
        {
            "prune": {
                "from": "teacher",
                "heads": 0.5,
                "head_dims": 0.25,
                "ffn": 0.5,
                "scope": "global",
                "importance": "random",
                "recover": {"epochs": 1, "learning_rate": 2e-3, "batch_size": 16},
            }
        },
        {"export": {}},
        {"quantize": {}},
        {"evaluate": {"batch_sizes": [1], "seq_lengths": [32], "rounds": 3, "warmup": 1}},
        {"report": {}},
    ]
    result = run_recipe(
        parse_recipe(tiny_recipe(stages, family="distilbert", limit=300), "tiny.yaml"), out=tmp_path / "run"
    )
    variants = {v["name"]: v for v in result.report["variants"]}
    assert list(variants) == ["teacher", "teacher-onnx", "pruned", "pruned-onnx", "pruned-int8"]
    pruned = variants["pruned"]
    assert pruned["info"]["training"]["history"], "recovery ran"
    assert pruned["parameters"] < variants["teacher"]["parameters"]
    assert 0 < pruned["info"]["macs"] < variants["teacher"]["info"]["macs"]
    assert variants["pruned-int8"]["info"]["macs"] == pruned["info"]["macs"]
    assert variants["pruned-onnx"]["info"]["max_abs_logit_diff_vs_torch"] < 1e-4
    assert variants["pruned-int8"]["accuracy"] >= pruned["accuracy"] - 0.05
    assert "MACs" in (result.run_dir / "report.md").read_text()

    # the pruned model directory is a valid recipe input, with its pruned shapes
    again = tiny_recipe([{"export": {}}], family="distilbert")
    again["model"]["source"] = pruned["path"]
    reloaded = run_recipe(parse_recipe(again, "again.yaml"), out=tmp_path / "again")
    loaded = load_model(reloaded.run_dir / "stages" / "00-input" / "model")
    assert shape_summary(loaded) == pruned["info"]["pruning"]["after"]


def test_non_uniform_heads_fuse_into_attention_with_each_layers_head_count(tmp_path):
    import numpy as np
    import onnx

    from compress.onnx.export import export_onnx
    from compress.onnx.fusion import explicit_head_counts, fuse_transformer
    from compress.runtimes import OnnxPredictor

    model = tiny_model("bert", layers=2)
    calibration = [(dict(zip(("input_ids", "attention_mask"), batch(seed=5, n=8), strict=True)), torch.tensor([0, 1] * 4))]
    shapes = prune(model, calibration, heads=3, scope="global", importance="taylor")["after"]
    assert len(set(shapes["heads"])) > 1, shapes
    ids, mask = (t.numpy() for t in batch(seed=3))
    source = export_onnx(model, {"input_ids": ids, "attention_mask": mask}, tmp_path / "model.onnx", 17)
    graph = onnx.load(str(source))
    assert explicit_head_counts(graph) == 3 * 2  # Q, K and V of both layers
    info = fuse_transformer(source, tmp_path / "fused.onnx", [{"input_ids": ids, "attention_mask": mask}], 1e-4)
    assert info["used"] and info["fused_operators"]["Attention"] == 2, info
    fused = onnx.load(str(tmp_path / "fused.onnx")).graph.node
    heads = [next(a.i for a in n.attribute if a.name == "num_heads") for n in fused if n.op_type == "Attention"]
    assert heads == shapes["heads"]
    np.testing.assert_allclose(
        OnnxPredictor(tmp_path / "fused.onnx").run({"input_ids": ids, "attention_mask": mask}),
        logits(model, *batch(seed=3)).numpy(),
        atol=1e-4,
    )


@pytest.mark.parametrize("family", registered_families())
def test_every_family_exports_pruned_or_not_and_fuses_where_it_declares_fuse(family, tmp_path):
    """Export parity for every registered family (after an FFN prune where ``prune`` is declared, so the
    graph carries pruned shapes), and fused-graph parity where ``fuse`` is declared."""
    import numpy as np

    from compress.onnx.export import export_onnx
    from compress.onnx.fusion import fuse_transformer
    from compress.runtimes import OnnxPredictor

    model = tiny_model(family)
    adapter = family_for(family)
    if adapter.supports("prune"):
        prune(model, ffn=0.25)
    ids, mask = (t.numpy() for t in batch(seed=3))
    inputs = {"input_ids": ids, "attention_mask": mask}
    source = export_onnx(model, inputs, tmp_path / "model.onnx", 17)
    expected = logits(model, *batch(seed=3)).numpy()
    np.testing.assert_allclose(OnnxPredictor(source).run(inputs), expected, atol=1e-4)
    if not adapter.supports("fuse"):
        return
    info = fuse_transformer(source, tmp_path / "fused.onnx", [inputs], 1e-4, fusion_type=adapter.fusion_type)
    assert info["used"] and info["fused_operators"].get("Attention") == 2, info
    np.testing.assert_allclose(OnnxPredictor(tmp_path / "fused.onnx").run(inputs), expected, atol=1e-4)
