"""CLIP zero-shot classification (open_clip) and the project's embedded CLIP."""
from .templates import CIFAR_TEMPLATES, DIGIT_WORDS, SINGLE_TEMPLATE, clean_classname, template_set
from .zeroshot import (ClipModel, MissingWeightsError, ZeroShotResult, build_classifier,
                       encode_images, load_clip, zero_shot)

__all__ = ["CIFAR_TEMPLATES", "DIGIT_WORDS", "SINGLE_TEMPLATE", "clean_classname", "template_set",
           "ClipModel", "MissingWeightsError", "ZeroShotResult", "build_classifier",
           "encode_images", "load_clip", "zero_shot"]
