"""``python -m hw2lib ti ...``: textual inversion, generation and the course's scoring."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import device_arg, group


def cmd_train(args) -> int:
    from ..data.course import read_concepts
    from ..train import TrainConfig
    from ..personalize import sd, textual_inversion as TI
    sd.check_sd(args.sd, args.sd_config)
    concepts = read_concepts(args.json, args.refs)
    model = sd.load_sd(args.sd, config_dir=args.sd_config, device=args.device,
                       resolution=args.resolution)
    inits = dict(kv.split("=", 1) for kv in args.init)
    specs = sd.course_specs(concepts, inits, num_vectors=args.num_vectors)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                      ema_decay=0.0, channels_last=False, seed=args.seed, save_every=args.save_every,
                      max_minutes=args.max_minutes)
    out = TI.train(model, specs, cfg, args.out, command=" ".join(sys.argv), relative=args.relative)
    print(f"learned embeddings in {out / 'learned_embeds'}")
    return 0


def cmd_generate(args) -> int:
    from ..data.course import read_concepts
    from ..errors import MissingInputError
    from ..files import child
    from ..personalize import compose, sd, textual_inversion as TI
    sd.check_sd(args.sd, args.sd_config)
    concepts = read_concepts(args.json)
    folders = [child(args.out, c.key, where=f"{args.json}[{c.key!r}]") for c in concepts]
    if not Path(args.embeds).is_dir() or not list(Path(args.embeds).glob("*.safetensors")):
        raise MissingInputError(f"no learned embeddings (*.safetensors) in {args.embeds}: run "
                                "`python -m hw2lib ti train`")
    model = sd.load_sd(args.sd, config_dir=args.sd_config, device=args.device)
    TI.load_embeddings(model, args.embeds)
    for c, folder in zip(concepts, folders):
        compose.generate_folder(model, c.prompts, folder, n_per_prompt=args.n, seed=args.seed,
                                batch_size=args.batch_size, steps=args.steps, w=args.w)
    print(f"images in {args.out}")
    return 0


def cmd_score(args) -> int:
    from ..zeroshot import load_clip
    from ..data.course import read_concepts
    from ..personalize.score import format_scores, score_outputs
    from ..device import resolve
    dev = str(resolve(args.device))
    concepts = read_concepts(args.json, args.refs)
    clip = load_clip(args.model, args.clip_weights, quick_gelu=not args.no_quick_gelu, device=dev)
    print(format_scores(score_outputs(clip, concepts, args.out)))
    return 0


def _sd_args(p) -> None:
    p.add_argument("--sd", required=True, help="Stable Diffusion: diffusers folder or sd-v1-4.ckpt")
    p.add_argument("--sd-config", default=None, help="with a single-file checkpoint: a local "
                   "folder with the pipeline's configs (default: stable-diffusion-v1-4's, shipped)")
    device_arg(p)


def register(sub) -> None:
    s = group(sub, "ti", "problem 3b: textual inversion, generation, course scoring")
    t = s.add_parser("train", help="learn <new1>, <new2> (resumable: rerun the same command)")
    _sd_args(t)
    t.add_argument("--json", required=True, help="textual_inversion/input.json")
    t.add_argument("--refs", required=True, help="textual_inversion/ (concept folders 0/, 1/)")
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch-size", type=int, default=4)
    t.add_argument("--lr", type=float, default=5e-3)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--resolution", type=int, default=None, help="default: the model's (512)")
    t.add_argument("--init", action="append", default=[], metavar="TOKEN=WORD",
                   help="init word of a token (default: the source name / 'painting')")
    t.add_argument("--num-vectors", type=int, default=1,
                   help="embedding vectors per token (diffusers' multi-vector format)")
    t.add_argument("--relative", action="store_true",
                   help="divide each sample's loss by the unconditional prediction's (one more "
                        "UNet forward per step; the embedded model's default)")
    t.add_argument("--save-every", type=int, default=250)
    t.add_argument("--max-minutes", type=float, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_train)
    g = s.add_parser("generate", help="25 images per prompt into <out>/<concept>/<prompt_idx>/")
    _sd_args(g)
    g.add_argument("--json", required=True)
    g.add_argument("--embeds", required=True, help="the learned_embeds folder of `ti train`")
    g.add_argument("--out", required=True)
    g.add_argument("--n", type=int, default=25)
    g.add_argument("--steps", type=int, default=50)
    g.add_argument("--w", type=float, default=6.5, help="guidance w (diffusers' scale = 1 + w)")
    g.add_argument("--batch-size", type=int, default=5)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_generate)
    c = s.add_parser("score", help="the course's CLIP image/text scores against the baselines")
    c.add_argument("--json", required=True)
    c.add_argument("--out", required=True, help="the generated folder")
    c.add_argument("--refs", required=True, help="textual_inversion/ (reference images)")
    c.add_argument("--clip-weights", default=None, help="OpenAI's ViT-B/32 weights file")
    c.add_argument("--model", default="ViT-B-32")
    c.add_argument("--no-quick-gelu", action="store_true")
    device_arg(c)
    c.set_defaults(func=cmd_score)
