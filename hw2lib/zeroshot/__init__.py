"""Problem 3a: CLIP zero-shot classification with open_clip (course: ViT-B/32 from a local
weights file; embedded: the project's CLIP trained on captioned digits, :mod:`.digit_clip`).

Modules: :mod:`.templates` (prompt templates, class names), :mod:`.model` (loading),
:mod:`.classify` (zero-shot classification and its bookkeeping), :mod:`.digit_clip` (the
embedded CLIP's captions and training), :mod:`.notebook` (the report's glue).
"""
from .classify import ZeroShotResult, encode_images, zero_shot
from .model import DIGIT_CLIP, ClipModel, MissingWeightsError, load_clip, load_digit_clip
from .templates import CIFAR_TEMPLATES, DIGIT_WORDS, SINGLE_TEMPLATE, clean_classname, template_set

__all__ = ["CIFAR_TEMPLATES", "DIGIT_WORDS", "SINGLE_TEMPLATE", "clean_classname", "template_set",
           "DIGIT_CLIP", "ClipModel", "MissingWeightsError", "ZeroShotResult", "encode_images",
           "load_clip", "load_digit_clip", "zero_shot"]
