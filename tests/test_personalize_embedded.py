"""P3b embedded mode: the scene model's text tower, scenes and captions, and the whole path
(train -> textual inversion -> generation -> region composition -> scores) on a tiny UNet."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hw2lib.data.embedded import DigitSet
from hw2lib.personalize import compose, concepts, scene_model, scenes
from hw2lib.personalize.scenes import CELL
from hw2lib.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "checkpoints" / "p3_clip"
TINY_UNET = dict(block_out_channels=(16, 16, 16), norm_num_groups=8)


def _sets(n=40, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("mnistm", "svhn"):
        x = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        y = np.arange(n) % 10
        out[name] = DigitSet(name, x, y, x[:20], y[:20], f"fp-{name}")
    return out


def test_text_tower_equals_open_clip():
    import open_clip

    from hw2lib.zeroshot import DIGIT_CLIP, load_digit_clip
    m = load_digit_clip(CLIP).model
    te = scene_model.hf_text_encoder(m)
    ids = open_clip.get_tokenizer(DIGIT_CLIP)(["a 3 next to a seven", "", "a four on the left"])
    with torch.no_grad():
        x = m.transformer(m.token_embedding(ids) + m.positional_embedding, attn_mask=m.attn_mask)
        ref = m.ln_final(x)
        out = te(ids).last_hidden_state
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()


def test_scenes_match_their_captions():
    cells = torch.rand(10, 3, CELL, CELL) * 2 - 1
    labels = np.arange(10)
    x, caps = scenes.draw_scenes(cells, labels, 200, torch.Generator().manual_seed(0), p_single=0.5)
    assert x.shape == (200, 3, CELL, 2 * CELL)
    flat = lambda c: bool((c.std((-2, -1)) < 1e-6).all())  # noqa: E731
    singles = 0
    for img, cap in zip(x, caps):
        left_blank, right_blank = flat(img[..., :CELL]), flat(img[..., CELL:])
        assert not (left_blank and right_blank)
        if left_blank or right_blank:
            singles += 1
            assert "next to" not in cap and " and " not in cap
            if "on the left" in cap:
                assert right_blank
            if "on the right" in cap:
                assert left_blank
        else:
            assert "next to" in cap or " and " in cap or "to the right of" in cap
    assert 60 < singles < 140
    assert any(c.startswith("an eight") for c in caps) or any(c.startswith("an 8") for c in caps)


def test_cell_attributes_name_ink_and_paper(tmp_path):
    cells = torch.empty(2, 3, CELL, CELL)
    cells[0] = torch.tensor([0.8, 0.05, 0.1]).view(3, 1, 1)  # red paper
    cells[0, :, 4:12, 7:9] = torch.tensor([0.95, 0.9, 0.1]).view(3, 1, 1)  # a yellow "1"
    cells[1] = torch.tensor([0.1, 0.6, 0.2]).view(3, 1, 1)  # green paper
    cells[1, :, 3:13, 5:11] = torch.tensor([0.15, 0.2, 0.9]).view(3, 1, 1)  # a blue blob
    a = scenes.cell_attributes(cells * 2 - 1, ["mnistm", "svhn"])
    assert a == [dict(domain="handwritten", ink="yellow", paper="red"),
                 dict(domain="printed", ink="blue", paper="green")]
    rng = np.random.default_rng(0)
    caps = [scenes.scene_caption(1, 4, rng, tuple(a)) for _ in range(200)]
    assert any("yellow 1" in c or "yellow one" in c for c in caps)
    assert any("on green" in c for c in caps) and any("handwritten" in c for c in caps)
    # the left cell (the 1) is never described by the right cell's colours, and vice versa
    assert not any("green" in c.split(" next to ")[0] for c in caps if " next to " in c)
    assert not any("red" in c.split(" to the right of ")[0] for c in caps if "right of" in c)
    longest = "a printed orange eight on purple to the right of a handwritten orange eight on purple"
    tok = scene_model.text_components(CLIP)["tokenizer"]
    assert len(tok(longest).input_ids) <= tok.model_max_length


def test_concepts_are_held_out_and_styled():
    sets = _sets()
    c = concepts.new_concepts(sets, n_images=4)
    assert set(c) == {"<new1>", "<new2>"}
    assert c["<new1>"]["cells"].shape == (4, 3, CELL, CELL)
    # the style concept has two colours only: every pixel is a mix of ink and paper
    s = c["<new2>"]["cells"]
    assert s.shape == (4, 3, CELL, CELL)
    assert s.min() >= -1 and s.max() <= 1


def test_two_tone_puts_ink_on_the_digit_and_paper_around_it():
    cells = torch.full((2, 3, CELL, CELL), -0.6)  # dark plate, bright digit
    cells[:, :, 4:12, 7:9] = 0.8
    cells[1] = -cells[1]  # bright plate, dark digit: the minority tone is still the digit
    ink = torch.tensor([[0.98, 0.85, 0.10], [0.2, 0.9, 0.3]])
    paper = torch.tensor([0.1, 0.12, 0.45])
    out = (scenes.two_tone(cells, ink, paper) + 1) / 2
    for k in range(2):
        assert torch.allclose(out[k, :, 6, 7], ink[k], atol=1e-4)
        assert torch.allclose(out[k, :, 0, 0], paper, atol=1e-4)
    # <new2>'s style is two_tone with its fixed colours
    assert torch.equal(concepts._restyle(cells), scenes.two_tone(cells, (0.98, 0.85, 0.10),
                                                                 (0.10, 0.12, 0.45)))


def test_recoloured_cells_are_captioned_with_the_drawn_colours():
    g = torch.Generator().manual_seed(0)
    ink, paper = scenes.colour_pairs(2000, g)
    lum = torch.tensor([0.299, 0.587, 0.114])
    assert (((ink - paper) @ lum).abs() >= 0.25).all()
    words = {scenes.colour_word(*c.tolist()) for c in ink}
    assert {"yellow", "blue", "red", "green"} <= words  # the colour words' hues are all reached

    cells = torch.full((10, 3, CELL, CELL), -0.8)
    cells[:, :, 3:13, 6:10] = 0.9
    domains = ["mnistm"] * 5 + ["svhn"] * 5
    copies, idx, attrs = scenes.recoloured(cells, domains, 0.6, torch.Generator().manual_seed(1))
    assert copies.shape == (6, 3, CELL, CELL) and len(idx) == len(attrs) == 6
    assert len(set(idx.tolist())) == 6
    measured = scenes.cell_attributes(copies, [domains[i] for i in idx.tolist()])
    assert [a["domain"] for a in attrs] == [m["domain"] for m in measured]
    # on a clean two-tone cell the 2-means finds the colours the caption names
    assert sum(a == m for a, m in zip(attrs, measured)) >= 5


def test_training_cells_add_the_recoloured_share():
    sets = _sets(n=20)
    cells, labels, attrs = scene_model.training_cells(sets)
    assert len(cells) == len(labels) == len(attrs) == 40
    more, more_labels, more_attrs = scene_model.training_cells(sets, recolour=0.5)
    assert len(more) == len(more_labels) == len(more_attrs) == 60
    assert torch.equal(more[:40], cells) and more_attrs[:40] == attrs
    census = scene_model.colour_census(more_attrs)
    assert sum(census.values()) == 60 and list(census.values()) == sorted(census.values())[::-1]
    from hw2lib.nets.presets import PRESETS
    # the committed scene model was trained without it: the preset reproduces that one
    assert PRESETS["t2i"].options["recolour"] == 0.0


def test_concept_captions_say_the_side_the_concept_is_on():
    for spec in concepts.concept_specs(concepts.new_concepts(_sets(), n_images=3)):
        assert len(spec.image_prompts) == len(spec.images) == 6
        for canvas, temps in zip(spec.images, spec.image_prompts):
            left_busy = canvas[..., : CELL].std() > canvas[..., CELL:].std()
            side = [t for t in temps if " on the " in t]
            assert side == ["a {} on the left" if left_busy else "a {} on the right"]


@pytest.mark.slow
def test_tiny_scene_model_end_to_end(tmp_path):
    sets = _sets()
    cfg = TrainConfig(steps=2, batch_size=4, lr=1e-3, save_every=100, channels_last=False)
    out = scene_model.train(sets, CLIP, tmp_path / "t2i", cfg, unet_kw=TINY_UNET, progress=False)
    model = scene_model.load_scene_model(out)
    assert model.latent_shape == (3, CELL, 2 * CELL)
    # fine-tuning with recolour augmentation starts from the trained weights and says so
    ft = scene_model.train(sets, CLIP, tmp_path / "ft", replace(cfg, steps=1), unet_kw=TINY_UNET,
                           progress=False, recolour=0.5, init=out)
    m = json.loads((ft / "manifest.json").read_text())
    assert m["init"]["folder"] == str(out) and m["init"]["steps_done"] == 2
    assert m["recolour"] == 0.5 and m["n_train_cells"] == 120
    assert sum(m["colour_census"]["recoloured"].values()) == 40
    base = model.text_encoder.get_input_embeddings().weight.detach().clone()

    ti_cfg = TrainConfig(steps=3, batch_size=4, lr=1e-2, warmup=1, ema_decay=0.0,
                         channels_last=False, save_every=100)
    ti = concepts.train_concepts(out, sets, tmp_path / "ti", ti_cfg, progress=False,
                                 snr_gamma=1.0, relative=True)
    model = scene_model.load_scene_model(out)
    refs = concepts.load_concepts(model, ti)
    table = model.text_encoder.get_input_embeddings().weight.detach()
    assert torch.equal(table[: len(base)], base), "textual inversion changed existing rows"
    tok = model.tokenizer
    new_ids = tok.convert_tokens_to_ids(["<new1>", "<new2>"])
    four = tok("four", add_special_tokens=False).input_ids
    assert not torch.allclose(table[new_ids[0]], base[four].mean(0)), "the new row did not move"

    noise = torch.randn(2, 3, CELL, 2 * CELL, generator=torch.Generator().manual_seed(0))
    imgs = compose.generate(model, ["a <new1>", "a <new2>"], noise=noise, steps=3)
    assert imgs.shape == (2, CELL, 2 * CELL, 3) and imgs.dtype == np.uint8
    reg = compose.generate_regions(model, "a <new1> on the left", "a <new2> on the right",
                                   noise=noise, steps=3)
    assert reg.shape == imgs.shape
    from hw2lib.personalize.judge import CellJudge
    from hw2lib.personalize.setups import init_prompts
    from hw2lib.zeroshot import load_digit_clip
    judge = CellJudge(load_digit_clip(CLIP), refs)
    scores = judge.region_scores(reg)
    assert scores["both_present"].shape == (2,)
    assert judge.subject_scores(imgs, "<new1>").shape == (2,)
    from hw2lib.personalize import notebook
    drawn = notebook.draw(model, ["a <new1>", "a four", "a <new2>", "a digit"], n=3, seed=0,
                          w=3.0, steps=3, batch_size=2)
    inits = init_prompts(ti, judge.tokens)
    assert inits == {"<new1>": "a four", "<new2>": "a digit"}
    t = notebook.concept_table(judge, drawn, inits).set_index("prompt")
    for token, init in inits.items():  # paired difference = difference of the means
        assert t.loc[f"a {token}", "minus init word"] == pytest.approx(
            t.loc[f"a {token}", "image score"] - t.loc[init, "image score"], abs=1e-4)
    imgs, comp = notebook.compose_two(model, judge, n=4, seed=1, w=3.0, steps=3)
    for (_, r), im in zip(comp.iterrows(), imgs.values()):
        p = r["both present"]  # the share of both present carries its binomial SE
        assert r["SE of both present"] == pytest.approx((p * (1 - p) / 4) ** 0.5)
        s = judge.region_scores(im)  # and the right score where occupied is over those only
        occ = s["right_occupied"]
        want = s["right_vs_<new2>"][occ].mean() if occ.any() else float("nan")
        assert r["right vs <new2> where occupied"] == pytest.approx(want, nan_ok=True)
        placed = comp.attrs["placed"][r["method"]]  # every image in exactly one outcome
        assert placed["both_present"] == int(s["both_present"].sum())
        assert sum(placed[k] for k in ("both_present", "both_<new1>", "both_<new2>",
                                       "swapped")) == placed["both_occupied"]


def test_region_mask_uses_each_prompt_only_on_its_side():
    """With a model whose eps is its context's mean, the left half must follow the left prompt's
    guided prediction and the right half the right prompt's."""
    from hw2lib.personalize.compose import region_eps

    class Tok:
        model_max_length = 4

        def __call__(self, prompts, **kw):
            class R:
                pass
            r = R()
            r.input_ids = torch.tensor([[len(p)] * 4 for p in prompts])
            return r

    class TE:
        device = "cpu"

        def __call__(self, ids):
            return (ids.float()[..., None].expand(-1, -1, 2),)

    class Model:  # a TextToImage stand-in: eps = the prompt's length everywhere
        tokenizer, text_encoder = Tok(), TE()

        def eps(self, x, t, ctx):
            return torch.ones_like(x) * ctx.mean((1, 2)).view(-1, 1, 1, 1)

    e = region_eps(Model(), "ab", "abcd", 1.0, 1)(torch.zeros(1, 3, 4, 8), torch.tensor([500]))
    # guided = 2 * eps(c) - eps(null): left 2*2 - 0 = 4, right 2*4 - 0 = 8
    assert torch.allclose(e[..., :4], torch.full_like(e[..., :4], 4.0))
    assert torch.allclose(e[..., 4:], torch.full_like(e[..., 4:], 8.0))


@pytest.mark.slow
def test_notebook_course_mode_without_its_inputs_is_skipped_naming_them(tmp_path):
    """In course mode P3.2 draws with Stable Diffusion: without the course's data the section
    is skipped (not failed) and its notice names the missing file and what to pass."""
    from hw2lib.report import run_all
    status = run_all([ROOT / "notebooks" / "p3_personalize.ipynb"], tmp_path / "build",
                     {"mode": "course", "data_dir": str(tmp_path / "hw2_data"),
                      "fig_dir": str(tmp_path / "figs")})
    st = status["p3_personalize"]
    assert st["status"] == "skipped", st
    assert str(tmp_path / "hw2_data" / "textual_inversion" / "input.json") in st["error"]
    assert "DATA=" in st["error"]


def test_course_setup_names_each_missing_model(tmp_path):
    """Every course input is checked before anything loads, in the order a student provides
    them; the error names the file and the Make variable."""
    from hw2lib.errors import MissingInput
    from hw2lib.personalize import setups
    ti = tmp_path / "hw2_data" / "textual_inversion"
    ti.mkdir(parents=True)
    (ti / "input.json").write_text("{}")
    kw = dict(data_dir=tmp_path / "hw2_data", sd="", ti_ckpt="", clip_weights="")
    with pytest.raises(MissingInput, match="SD="):
        setups.course(**kw)
    (tmp_path / "sd-v1-4.ckpt").write_bytes(b"")
    kw["sd"] = tmp_path / "sd-v1-4.ckpt"
    with pytest.raises(MissingInput, match="TI_CKPT="):
        setups.course(**kw)
    (tmp_path / "ti" / "learned_embeds").mkdir(parents=True)
    kw["ti_ckpt"] = tmp_path / "ti"
    with pytest.raises(MissingInput, match="CLIP_WEIGHTS="):
        setups.course(**kw)


def test_train_ti_calls_its_loss_weight_target_w():
    """``train ti``'s guided-target weight is a loss setting, not the sampling guidance."""
    from hw2lib import cli
    assert cli.build_parser().parse_args(["train", "ti", "--target-w", "1.5"]).target_w == 1.5
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "ti", "--guidance", "1"])


def test_style_check_counts_the_references_colours_and_says_what_made_the_difference():
    import pandas as pd

    from hw2lib.images import to_uint8
    from hw2lib.personalize import notebook

    digit = torch.full((4, 3, CELL, CELL), -0.8)
    digit[:, :, 3:13, 6:10] = 0.9
    styled = concepts._restyle(digit)  # yellow on navy
    other = scenes.two_tone(digit, (0.9, 0.1, 0.1), (0.9, 0.9, 0.9))  # red on white

    class FakeJudge:  # the references and the subject cell as CellJudge has them
        references = {"<new2>": to_uint8(styled)}
        subject = staticmethod(lambda imgs: scenes.scenes_to_cells(imgs)[0])

    judge = FakeJudge()
    assert notebook.style_words(judge, "<new2>") == ("yellow", "blue", 4)
    scene = lambda cells: to_uint8(torch.cat([cells, scenes.blank_like(cells)], -1))  # noqa: E731
    hits = notebook.in_style(judge, np.concatenate([scene(styled[:3]), scene(other[:2])]),
                             "yellow", "blue")
    assert hits.tolist() == [True, True, True, False, False]

    table = pd.DataFrame([
        {"prompt": "a <new2>", "which": "learned token", "yellow on blue": 28, "of": 32,
         "in the first 8": 7},
        {"prompt": "a digit", "which": "init word", "yellow on blue": 0, "of": 32,
         "in the first 8": 0},
        {"prompt": "a yellow digit on blue", "which": "colour words", "yellow on blue": 9,
         "of": 32, "in the first 8": 2},
        {"prompt": "a yellow digit on blue", "which": "colour words, base model",
         "yellow on blue": 0, "of": 32, "in the first 8": 0}])
    manifest = {"recolour": 0.5, "colour_census": {
        "data": {"grey on black": 1725, "grey on grey": 1535, "teal on red": 1047,
                 "yellow on blue": 3, "red on red": 9690},
        "recoloured": {"yellow on blue": 107, "green on green": 6893}}}
    text = notebook.style_text(table, ("yellow", "blue", 5), "<new2>", 6, manifest)
    for part in ("5 of 6", "in 28 of 32 generations (7 of the 8 in the figure)",
                 '`a digit` in 0', '`a yellow digit on blue` in 9', "14,000 cells",
                 "occurs 3 times (0.02%", "50% of its cells", "7,000", "107 of them",
                 "more often than the colour words do", "the colour words give yellow on blue "
                 "in 0 of 32", "trained with recolour"):
        assert part in text, part
    # colour words that still miss the pair: the text says the augmentation did not reach it
    missed = table.assign(**{"yellow on blue": [0, 0, 2, 2]})
    text = notebook.style_text(missed, ("yellow", "blue", 5), "<new2>", 6, manifest)
    assert "still give yellow on blue in only 2 of 32" in text
    assert "within the model's range, and" not in text
    # an older scene model's manifest has no census: the counts alone
    assert "What made the difference" not in notebook.style_text(table, ("yellow", "blue", 5),
                                                                 "<new2>", 6, {})
    # a model trained without recoloured copies: the census alone says why
    plain = {"recolour": 0.0, "colour_census": {"data": manifest["colour_census"]["data"],
                                                "recoloured": {}}}
    text = notebook.style_text(missed, ("yellow", "blue", 5), "<new2>", 6, plain)
    assert "occurs 3 times (0.02%" in text
    assert ("This scene model was trained on those alone, and its colour words give yellow on "
            "blue in 2 of 32: it can hardly draw yellow on blue, so `<new2>` cannot ask") in text
    assert "trained with recolour" not in text


def test_an_older_scene_manifest_gets_its_census_from_the_data(monkeypatch):
    """A manifest without a colour census is counted from the embedded data when its data
    fingerprints match; not when they differ, nor for a recoloured model."""
    from types import SimpleNamespace

    import numpy as np

    from hw2lib.personalize import setups
    sets = {"mnistm": SimpleNamespace(fingerprint="a", x_train=None, y_train=np.zeros(2))}
    monkeypatch.setattr("hw2lib.data.load_digit_sets", lambda mode, cache_dir=None: sets)
    monkeypatch.setattr("hw2lib.personalize.scene_model.training_cells",
                        lambda s: (None, None, [{"ink": "grey", "paper": "black"}] * 2))
    got = setups._with_census({"data_fingerprints": {"mnistm": "a"}})
    assert got["colour_census"] == {"data": {"grey on black": 2}, "recoloured": {}}
    assert "colour_census" not in setups._with_census({"data_fingerprints": {"mnistm": "b"}})
    assert "colour_census" not in setups._with_census({"data_fingerprints": {"mnistm": "a"},
                                                       "recolour": 0.5})


def test_a_blank_cell_is_not_a_present_concept():
    """Composition: a concept counts as present only in a cell that holds something; a flat
    (blank) cell nearer to a concept's references does not count."""
    import numpy as np
    import torch

    from hw2lib.personalize.judge import CellJudge

    class ByBrightness(CellJudge):  # no CLIP: dark cells are nearer <a>, bright ones <b>
        def __init__(self, refs):
            self.tokens = list(refs)
            self.reference_spread = float(torch.cat([r.std((-3, -2, -1))
                                                     for r in refs.values()]).median())

        def scores(self, cells):
            dark = (cells.mean((-3, -2, -1)) < 0.1).numpy()[:, None]
            return np.where(dark, [[1.0, 0.0]], [[0.0, 1.0]])

    rng = np.random.default_rng(0)
    refs = {"<a>": torch.rand(4, 3, 16, 16) * 2 - 1, "<b>": torch.rand(4, 3, 16, 16) * 2 - 1}
    judge = ByBrightness(refs)
    scenes = np.concatenate([rng.integers(0, 120, (2, 16, 16, 3)),  # busy dark left cells
                             rng.integers(140, 256, (2, 16, 16, 3))], axis=2).astype(np.uint8)
    scenes[1, :, :16] = 110  # the second scene's left cell is flat: dark, but empty
    out = judge.region_scores(scenes)
    assert list(out["both_occupied"]) == [True, False] and list(out["left_occupied"]) == [True, False]
    assert list(out["right_occupied"]) == [True, True]
    assert list(out["both_present"]) == [True, False]


def test_position_text_measures_what_a_side_word_changes():
    import numpy as np

    from hw2lib.personalize import notebook
    from hw2lib.personalize.judge import CellJudge

    class Cells(CellJudge):
        def __init__(self):
            self.tokens = ["<a>"]

    rng = np.random.default_rng(0)
    plain = np.full((4, 16, 32, 3), 120, np.uint8)
    plain[:, :, :16] = rng.integers(0, 256, (4, 16, 16, 3))  # the concept in the left cell
    moved = plain.copy()
    moved[:2] = np.concatenate([plain[:2, :, 16:], plain[:2, :, :16]], axis=2)  # 2 moved right
    text = notebook.position_text({"a <a>": plain, "a <a> on the right": moved}, Cells())
    assert "`a <a> on the right` differs from `a <a>` by" in text
    assert "puts the concept's cell on the right in 2 of 4" in text
    assert notebook.position_text({"a <a>": plain}, Cells()) == ""


def test_findings_say_what_present_means_when_the_style_never_shows():
    """A style token whose generations lack its colours is still counted 'present' where its
    cell is nearer to its references than to the other token's: the findings say so, and say
    nothing of it when the colours do show."""
    from types import SimpleNamespace

    import pandas as pd

    from hw2lib.personalize import notebook
    scores = pd.DataFrame([
        {"concept": "<new1>", "prompt": "a <new1>", "which": "learned token", "image score": 70.9,
         "minus init word": 10.5, "SE": 4.7},
        {"concept": "<new1>", "prompt": "a four", "which": "init word", "image score": 60.4},
        {"concept": "<new2>", "prompt": "a <new2>", "which": "learned token", "image score": 64.2,
         "minus init word": 26.7, "SE": 4.0},
        {"concept": "<new2>", "prompt": "a digit", "which": "init word", "image score": 37.5}])
    comp = pd.DataFrame([{"method": m, "left vs <new1>": 54.8, "right vs <new2>": 40.0,
                          "both present": b, "SE of both present": 0.07, "left occupied": 0.8,
                          "right occupied": 0.7} for m, b in (("naive", 0.25), ("masked", 0.125))])
    judge = SimpleNamespace(part="cell", parts="cells", space="CLIP image space")

    def style(k):
        return ("<new2>", pd.DataFrame([{"prompt": "a <new2>", "which": "learned token",
                                         "yellow on blue": k, "of": 32}]), ("yellow", "blue", 5))
    text = notebook.findings(scores, comp, 32, judge, style=style(0))
    assert ("Since `<new2>`'s own generations are yellow on blue in only 0 of 32, a `<new2>` "
            "counted here is a cell nearer to its references than to `<new1>`'s") in text
    assert "Since `<new2>`" not in notebook.findings(scores, comp, 32, judge, style=style(20))
    assert "Since" not in notebook.findings(scores, comp, 32, judge)
    assert "Where the concepts went" not in notebook.findings(scores, comp, 32, judge)
    comp.attrs["placed"] = {"naive": {"both_present": 8, "both_<new1>": 10, "both_<new2>": 3,
                                      "swapped": 2, "both_occupied": 23}}
    assert ("Where the concepts went instead, on the same judgments: in 13 of 32 naive images "
            "both cells hold something and are nearer to one concept (10 to `<new1>`, 3 to "
            "`<new2>`), in 2 the two are swapped, and in 9 a cell is blank. The likely cause") in (
        notebook.findings(scores, comp, 32, judge))
    assert "where occupied" not in notebook.findings(scores, comp, 32, judge)
    # blank cells that score higher than drawn ones are said to lift the right cells' mean
    where = comp.assign(**{"left vs <new1> where occupied": [55.0, 50.0],
                           "right vs <new2> where occupied": [40.5, float("nan")]})
    where.loc[1, "method"] = "region-masked"
    text = notebook.findings(scores, where, 32, judge)
    assert ("Scored only where the right cell holds something, the right cells against `<new2>` "
            "read: naive 40.5 where occupied against 40.0 over all; region-masked: no right cell "
            "holds something.") in text
    where.loc[1, "right vs <new2> where occupied"] = 35.0
    assert "region-masked 35.0 where occupied against 40.0 over all (blank ones lift it)." in (
        notebook.findings(scores, where, 32, judge))
    assert notebook.compose_formats(where)["right vs <new2> where occupied"] == "{:.1f}"
    assert notebook.compose_formats(where)["both present"] == "{:.1%}"
    # the style concept's colours counted beside "both present", and a composition test whose
    # tokens fail alone says it cannot separate the two failures
    col = notebook.COLOURED.format("<new2>", "yellow", "blue")
    coloured = comp.assign(**{col: [0.0, 1 / 32]})
    text = notebook.findings(scores, coloured, 32, judge, style=style(0))
    assert ("counted only where `<new2>`'s cell is also yellow on blue like its references, "
            "0 of 32)") in text
    assert "raises this to 4 of 32 (1 of 32 in its colours)" not in text  # masked: 4 < 8
    assert "lowers this to 4 of 32 (1 of 32 in its colours)" in text
    assert ("Since `<new2>` alone does not reproduce its concept (above), this test cannot tell "
            "a failure to compose from a failure to learn the concept.") in text
    assert "cannot tell" not in notebook.findings(scores, coloured, 32, judge, style=style(20))
    weak = scores.assign(**{"minus init word": [0.3, None, 26.7, None]})
    assert "Since `<new1>` alone does not" in notebook.findings(weak, comp, 32, judge)
    assert notebook.compose_formats(coloured)[col] == "{:.1%}"


def test_replicates_say_whether_a_token_is_stable_across_trainings(tmp_path):
    """The paragraph lists each token's gain seed by seed and calls a range over twice the mean
    SE unsettled; a table of another recipe, or without the page's seed, is named, not used."""
    import json

    import pandas as pd

    from hw2lib.personalize import replicates
    table = pd.DataFrame([
        {"train seed": s, "concept": c, "minus init word": d, "SE": se, "images": 32}
        for s, c, d, se in [(0, "<a>", -0.3, 5.0), (0, "<b>", 26.0, 4.0), (1, "<a>", 13.5, 4.0),
                            (1, "<b>", 26.2, 4.0), (2, "<a>", 5.0, 4.5), (2, "<b>", 26.7, 4.0)]])
    meta = {"n": 32, "cpu": "AMD EPYC", "made": "2026-11-27 00:30:00"}
    t = replicates.text(table, meta, committed_seed=0)
    assert "from seeds 0, 1 and 2 (seed 0 is the tokens used on this page" in t
    assert "`<a>` \u22120.3, +13.5, +5.0; `<b>` +26.0, +26.2, +26.7" in t
    assert "`<a>`'s gain ranges over 13.8 points, more than twice" in t
    assert "`<b>`'s gain ranges over 0.7 points, within twice" in t

    def run(folder, seed, lr=2e-3):
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps(
            {"train_config": {"seed": seed, "lr": lr, "steps": 300}, "relative": True,
             "concepts": [{"token": "<a>"}]}))
        return folder
    a, b, c = run(tmp_path / "a", 0), run(tmp_path / "b", 1), run(tmp_path / "c", 2, lr=1e-3)
    replicates.check_same_recipe([a, b])
    with pytest.raises(ValueError, match="another recipe"):
        replicates.check_same_recipe([a, b, c])
    assert replicates.paragraph(a) == ""  # no table yet
    replicates.write(a / replicates.FILE, table, runs=[a, b], command="p3 replicates", n=32,
                     seed=0, steps=25, w=None)
    assert replicates.paragraph(a).startswith("**Trained again.** The same recipe from seeds 0")
    replicates.write(a / replicates.FILE, table, runs=[c], command="p3 replicates", n=32,
                     seed=0, steps=25, w=None)
    assert "measured on another recipe" in replicates.paragraph(a)
