"""CLIP zero-shot: open_clip's classifier builder against the formula, result bookkeeping,
captions, and the course-mode command on the fixture tree with a random-weight model standing in
for OpenAI's."""
import numpy as np
import pytest
import torch

from hw2lib import cli
from hw2lib.zeroshot import (CIFAR_TEMPLATES, DIGIT_CLIP, DIGIT_WORDS, SINGLE_TEMPLATE,
                             MissingWeightsError, ZeroShotResult, clean_classname, digit_clip,
                             load_clip, load_digit_clip)
from hw2lib.zeroshot.model import register_configs

NAME = DIGIT_CLIP


@pytest.fixture(scope="module")
def tiny_clip():
    import open_clip
    register_configs()
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(NAME, pretrained=None)
    return model.eval(), preprocess, open_clip.get_tokenizer(NAME)


@pytest.fixture(scope="module")
def weights_file(tiny_clip, tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "tiny_clip.pt"
    torch.save(tiny_clip[0].state_dict(), path)
    return path


def _formula(model, tok, names, templates):
    """w_c = normalize(mean_k normalize(f_text(template_k(c)))), one class at a time."""
    with torch.no_grad():
        cols = []
        for c in names:
            emb = model.encode_text(tok([t.format(c) for t in templates]))
            w = torch.nn.functional.normalize(emb, dim=-1).mean(0)
            cols.append(w / w.norm())
    return torch.stack(cols, 1)


@pytest.mark.parametrize("templates", [SINGLE_TEMPLATE, CIFAR_TEMPLATES])
def test_open_clip_builder_is_the_formula(tiny_clip, templates):
    """zero_shot's class weights (open_clip's build_zero_shot_classifier, in batches of
    classes) are the documented formula computed class by class."""
    from open_clip import build_zero_shot_classifier
    model, _, tok = tiny_clip
    names = [clean_classname(n) for n in ("apple", "maple_tree", "willow_tree")] + list(DIGIT_WORDS)
    ours = build_zero_shot_classifier(model, tok, names, templates, num_classes_per_batch=4)
    assert ours.shape == (64, len(names))
    torch.testing.assert_close(ours, _formula(model, tok, names, templates), atol=1e-6, rtol=1e-5)
    # and the ensemble is not the single template in disguise
    if len(templates) > 1:
        single = build_zero_shot_classifier(model, tok, names, SINGLE_TEMPLATE)
        assert (single - ours).abs().max() > 1e-3


def test_zero_shot_is_the_softmax_of_scaled_cosines(tiny_clip):
    from hw2lib.zeroshot import ClipModel, zero_shot
    model, preprocess, tok = tiny_clip
    clip = ClipModel(model, preprocess, tok, NAME, "")
    feats = torch.nn.functional.normalize(torch.randn(5, 64, generator=torch.Generator().manual_seed(0)), dim=-1)
    r = zero_shot(clip, feats, np.zeros(5, dtype=int), DIGIT_WORDS, SINGLE_TEMPLATE)
    logits = model.logit_scale.exp() * feats @ _formula(model, tok, DIGIT_WORDS, SINGLE_TEMPLATE)
    np.testing.assert_allclose(r.probs, logits.softmax(-1).detach().numpy(), atol=1e-5)


def test_clean_classname():
    assert clean_classname("maple_tree") == "maple tree"
    assert clean_classname("sweet_pepper ") == "sweet pepper"


def test_result_metrics():
    probs = np.array([[0.7, 0.2, 0.1],   # 0 -> 0 ok
                      [0.6, 0.3, 0.1],   # 1 -> 0 wrong
                      [0.1, 0.1, 0.8],   # 2 -> 2 ok
                      [0.5, 0.1, 0.4],   # 2 -> 0 wrong
                      [0.2, 0.5, 0.3]])  # 1 -> 1 ok
    r = ZeroShotResult(probs, np.array([0, 1, 2, 2, 1]), ("a", "b", "c"))
    assert r.top1 == pytest.approx(0.6)
    assert r.topk(2) == pytest.approx(1.0)
    np.testing.assert_allclose(r.per_class(), [1.0, 0.5, 0.5])
    assert r.confusions() == [("b", "a", 1), ("c", "a", 1)]
    assert r.confusions(1) == [("b", "a", 1), ("c", "a", 1)]  # the tie with the first is kept
    more = ZeroShotResult(probs[[0, 1, 1, 2, 3, 4]], np.array([0, 1, 1, 2, 2, 1]), ("a", "b", "c"))
    assert more.confusions(1) == [("b", "a", 2)]
    assert list(r.cases(2, correct=False)) == [1, 3]  # most confident mistake first
    assert list(r.cases(3, correct=True)) == [2, 0, 4]
    assert r.top(3, 2) == [("a", 0.5), ("c", 0.4)]


def test_missing_weights_named(tmp_path):
    with pytest.raises(MissingWeightsError, match="nope.pt"):
        load_clip("ViT-B-32", tmp_path / "nope.pt")


def test_load_clip_from_file(tiny_clip, weights_file):
    clip = load_clip(NAME, weights_file)
    for (k, v), (k2, v2) in zip(clip.model.state_dict().items(), tiny_clip[0].state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_fast_tensor_path_matches_open_clip_preprocess(tiny_clip):
    from PIL import Image
    _, preprocess, _ = tiny_clip
    imgs = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
    cfg = tiny_clip[0].visual.preprocess_cfg
    fast = digit_clip.to_clip_tensor(imgs, cfg["mean"], cfg["std"])
    ref = torch.stack([preprocess(Image.fromarray(i)) for i in imgs])
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)


def test_captions_never_contain_an_evaluation_prompt():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (200, 28, 28, 3), dtype=np.uint8)
    caps = {digit_clip.caption(s, d % 10, imgs[d], rng) for s in ("mnistm", "svhn")
            for d in range(200) for _ in range(5)}
    assert len(caps) > 500  # varied
    prompts = [t.format(w).lower() for t in SINGLE_TEMPLATE + CIFAR_TEMPLATES for w in DIGIT_WORDS]
    for c in caps:
        assert "photo" not in c.lower()
        assert not any(p.rstrip(".") in c.lower() for p in prompts)


def test_colour_name():
    def solid(rgb):
        return np.full((4, 4, 3), rgb, dtype=np.uint8)
    assert digit_clip.colour_name(solid((220, 30, 30))) == "red"
    assert digit_clip.colour_name(solid((30, 30, 220))) == "blue"
    assert digit_clip.colour_name(solid((128, 128, 128))) == "grey"
    assert digit_clip.colour_name(solid((10, 10, 10))) == "black"


def test_course_zeroshot_cli(hw2_data_pristine, weights_file, capsys, tmp_path):
    out = tmp_path / "pred.csv"
    rc = cli.main(["p3", "zeroshot", "--mode", "course", "--data", str(hw2_data_pristine),
                   "--model", NAME, "--pretrained", str(weights_file), "--no-quick-gelu",
                   "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "single" in text and "ensemble" in text
    rows = out.read_text().splitlines()
    assert rows[0] == "filename,label,pred" and len(rows) == 1 + 6


def test_course_zeroshot_cli_without_weights(hw2_data_pristine, capsys, tmp_path):
    rc = cli.main(["p3", "zeroshot", "--mode", "course", "--data", str(hw2_data_pristine),
                   "--pretrained", str(tmp_path / "ViT-B-32.pt")])
    assert rc == 2
    assert "ViT-B-32.pt" in capsys.readouterr().err


def test_train_export_load_roundtrip(tmp_path):
    """Two steps of the real training code on a fake digit set; the export loads back through
    the course path (open_clip + a weights file)."""
    from hw2lib.data.embedded import DigitSet
    from hw2lib.train import TrainConfig
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 28, 28, 3), dtype=np.uint8)
    y = np.arange(20) % 10
    sets = {"mnistm": DigitSet("mnistm", x, y, x[:10], y[:10], "f0")}
    cfg = TrainConfig(steps=2, batch_size=8, lr=1e-3, warmup=1, channels_last=False)
    digit_clip.train(sets, tmp_path / "clip", cfg, progress=False)
    clip = load_digit_clip(tmp_path / "clip")
    assert (tmp_path / "clip" / "manifest.json").exists()
    assert clip.model.encode_image(torch.zeros(1, 3, 28, 28)).shape == (1, 64)


def test_notebook_course_mode(hw2_data_pristine, weights_file, tmp_path):
    """The P3 notebook runs in course mode on the fixture tree (the random model stands in for
    ViT-B/32): accuracy table, case panels, per-class chart."""
    import json
    from pathlib import Path
    from hw2lib.report import run_notebook
    root = Path(__file__).resolve().parents[1]
    figs = tmp_path / "figs"
    run_notebook(root / "notebooks" / "p3_zeroshot.ipynb", tmp_path / "p3.ipynb",
                 {"mode": "course", "data_dir": str(hw2_data_pristine), "clip_model": NAME,
                  "clip_weights": str(weights_file), "n_cases": 2, "fig_dir": str(figs)})
    m = json.loads((figs / "metrics.json").read_text())
    assert m["n_images"] == 6 and set(m["accuracy"]) == {"single", "ensemble"}
    assert {"successes.png", "failures.png", "per_class.png"} <= {p.name for p in figs.iterdir()}


def test_failure_causes_are_measured_per_image():
    import numpy as np

    from hw2lib.zeroshot import notebook
    from hw2lib.zeroshot.reasons import causes, text_neighbours
    probs = np.array([[0.95, 0.05, 0.0], [0.3, 0.6, 0.1], [0.96, 0.02, 0.02], [0.1, 0.2, 0.7]])
    # class weights: "lion" and "tiger" nearly coincide, "bus" is far from both
    w = np.array([[1.0, 0.0, 0.0], [0.96, 0.28, 0.0], [0.0, 0.0, 1.0]])
    cos, ranks = text_neighbours(w)
    assert ranks[0, 1] == 1 and ranks[0, 2] == 2 and ranks[2, 2] == 0
    # image embeddings: image 0 (a tiger called lion) sits among lions, image 1 among its own
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.99, 0.14], [0.1, 0.99]])
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    r = ZeroShotResult(probs, np.array([1, 0, 1, 2]), ("lion", "tiger", "bus"), w)
    flat, busy = np.full((8, 8, 3), 128, np.uint8), np.zeros((8, 8, 3), np.uint8)
    busy[:, 4:] = 255  # half black, half white: a spread of 0.5
    table = notebook.failure_table(r, [0, 1, 2], images=[flat, busy, busy],
                                   set_contrast=np.linspace(0.05, 0.5, 100))
    assert list(table["same mistake in set"]) == [2, 1, 2]
    c = table["likely causes"]
    assert c[0].startswith('near in text space: "lion" is the nearest of the 2 other classes '
                           'to "tiger", cosine 0.96 against ')
    assert c[2].startswith('near in text space')  # tiger -> lion: nearest; bus would not be
    far = causes(r.classnames, 0, 2, cos=cos, ranks=ranks)[0]
    assert far.startswith('not near in text space: "bus" is the 2nd nearest')
    assert "look-alikes: both are large carnivores" in c[0]
    assert "low contrast" in c[0] and "low contrast" not in c[1]  # a flat image vs a busy one
    text = notebook.failure_text(table, "course")
    assert "in 3 of 3 the two classes are near in text space" in text
    assert "2 of 3 are mistakes the set makes" in text
    assert "3 of 3 are look-alikes" in text and "1 of 3 is a low-contrast image" in text
    assert "look-alikes" not in notebook.failure_text(table, "embedded")
    sure = table.assign(**{"p(predicted)": 0.95})  # confident mistakes: the logit scale says why
    assert ("with the learned logit scale $s$ = 100.00, 90% against 10% needs a cosine gap of "
            "$\\ln 9 / s$ = 0.022 between the image's cosines with the two classes' weights, so a "
            "large $s$ turns "
            "near-ties") in notebook.failure_text(sure, "course", 100.0)
    assert "clearly nearer the wrong class" in notebook.failure_text(sure, "embedded", 22.8)
    unsure = table.assign(**{"p(predicted)": 0.5})
    assert "confident mistakes" not in notebook.failure_text(unsure, "course", 22.8)
    # digits: a pair one stroke apart is named, in the words of its direction; another is not
    digits = ("zero", "one", "six")
    assert any("a 0 is a 6's loop without its stem" in c for c in causes(digits, 2, 0))
    assert any("a 6 is a 0 with a stem rising from its top" in c for c in causes(digits, 0, 2))
    from hw2lib.zeroshot.reasons import DIGIT_SHAPES
    assert all((b, a) in DIGIT_SHAPES and DIGIT_SHAPES[(b, a)] != text
               for (a, b), text in DIGIT_SHAPES.items())  # both directions, each its own words
    assert not any("shapes one stroke apart" in c for c in causes(digits, 1, 2))
    # image side: the nearest images' classes, with the embeddings kept by zero_shot
    from hw2lib.zeroshot.reasons import contrast, image_neighbours
    assert list(image_neighbours(feats, r.labels, 0, k=2)) == [1, 2]
    seen = ZeroShotResult(probs, np.array([1, 0, 0, 2]), r.classnames, w, feats)
    seen_table = notebook.failure_table(seen, [0, 1], images=None)
    c = seen_table["likely causes"]
    assert "1 of 2 looks like the predicted class" in notebook.failure_text(seen_table, "course")
    assert c[0].startswith('looks like a "lion" to the image encoder: of the 3 other test images '
                           'nearest to it in CLIP\'s image-embedding space, 2 are labelled "lion"')
    assert c[1].startswith('a border case: its 3 nearest images are split between the two '
                           '(1 "lion", 1 "tiger")')
    # colour contrast: cyan on red is not low contrast, though its grey levels nearly agree
    cyan_red = np.zeros((8, 8, 3), np.uint8)
    cyan_red[:, :4] = (230, 40, 40)
    cyan_red[:, 4:] = (40, 160, 160)
    grey = cyan_red @ np.array([0.299, 0.587, 0.114])
    assert (grey / 255).std() < 0.06 and contrast([cyan_red])[0] > 0.25
    # without class weights (a result built by hand) no text-space cause is claimed
    bare = notebook.failure_table(ZeroShotResult(probs, r.labels, r.classnames), [0])
    assert "text space" not in bare["likely causes"][0]
    single = ZeroShotResult(probs, np.array([0, 1, 0, 2]), ("cat", "dog", "fox"))
    acc = notebook.accuracy_text({"single": single, "ensemble": r}, "course")
    assert "paired difference of -75.0 points" in acc and "SE" in acc


def test_per_class_standard_errors_and_their_bars():
    import matplotlib
    matplotlib.use("Agg")
    import numpy as np

    from hw2lib.viz import bar_figure
    probs = np.eye(2)[[0, 0, 1, 1, 0, 1]]  # predictions
    r = ZeroShotResult(probs, np.array([0, 0, 0, 0, 1, 1]), ("a", "b"))
    np.testing.assert_allclose(r.per_class(), [0.5, 0.5])
    np.testing.assert_allclose(r.per_class_se(), [np.sqrt(0.25 / 4), np.sqrt(0.25 / 2)])
    assert r.class_sizes() == "2-4 images per class, 3 on average"
    even = ZeroShotResult(probs[:4], np.array([0, 0, 1, 1]), ("a", "b"))
    assert even.class_sizes() == "2 images per class"
    fig = bar_figure(["a", "b"], {"x": r.per_class()}, percent=True,
                     errors={"x": r.per_class_se()})
    assert fig.axes[0].get_ylim()[0] <= 100 * (0.5 - np.sqrt(0.125))  # the axis shows the bars
    assert not fig.axes[0].patches  # on a cut axis: dots with error bars, no bars from zero
    assert len(fig.axes[0].lines) >= 1


def test_card_probabilities_never_round_to_certainty():
    from hw2lib.zeroshot.notebook import _prob
    assert [_prob(p) for p in (0.001, 0.02, 0.999, 0.5)] == ["<1%", "2%", ">99%", "50%"]
    import pandas as pd

    from hw2lib.zeroshot.notebook import failure_view
    shown = failure_view(pd.DataFrame({"p(predicted)": [0.999], "p(true)": [0.001]}))
    assert shown.iloc[0].tolist() == [">99%", "<1%"]  # the table writes what the card writes


def test_setup_text_says_what_zero_shot_means_for_the_stand_in():
    """The embedded CLIP saw the ten digit words in training: the page says its zero-shot is
    over unseen images and templates, not unseen classes; the course's CLIP gets no such line."""
    from types import SimpleNamespace

    from hw2lib.zeroshot import notebook as zs
    clip = SimpleNamespace(model=torch.nn.Linear(10, 10), name="digit-clip")
    data = SimpleNamespace(labels=np.zeros(2000), classnames=list("0123456789"))
    text = zs.setup_text(clip, data, "embedded")
    assert "not unseen classes" in text and "2,000 images, 10 classes." in text
    assert "not unseen classes" not in zs.setup_text(clip, data, "course")


def test_accuracy_table_shows_top5_only_beyond_ten_classes():
    """Among 10 classes five guesses cover half of them: no top-5 column; among 50 it is kept."""
    from hw2lib.zeroshot.classify import ZeroShotResult
    from hw2lib.zeroshot.notebook import accuracy_table
    rng = np.random.default_rng(0)
    for c, want in ((10, False), (50, True)):
        probs = rng.dirichlet(np.ones(c), 40)
        r = ZeroShotResult(probs, rng.integers(0, c, 40), tuple(map(str, range(c))))
        table = accuracy_table({"single": r})
        assert ("top-5" in table.columns) is want and table["top-1"][0] == r.top1
