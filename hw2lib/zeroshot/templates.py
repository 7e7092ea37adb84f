"""Prompt templates and class names (data only, as open_clip's zero_shot_metadata)."""

# The course's single template ("A photo of {label}.").
SINGLE_TEMPLATE = ("A photo of {}.",)

# The 18 CIFAR-100 templates of the CLIP paper (Radford et al. 2021, repository's
# data/prompts.md); the class embedding is the renormalised mean over them.
CIFAR_TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
    "a low contrast photo of a {}.",
    "a high contrast photo of a {}.",
    "a bad photo of a {}.",
    "a good photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a photo of the {}.",
    "a blurry photo of the {}.",
    "a black and white photo of the {}.",
    "a low contrast photo of the {}.",
    "a high contrast photo of the {}.",
    "a bad photo of the {}.",
    "a good photo of the {}.",
    "a photo of the small {}.",
    "a photo of the big {}.",
)

TEMPLATE_SETS = {"single": SINGLE_TEMPLATE, "ensemble": CIFAR_TEMPLATES}

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def clean_classname(name: str) -> str:
    """A class name as words for a prompt: ``maple_tree`` -> ``maple tree``."""
    return " ".join(name.replace("_", " ").split())


def template_set(kind: str) -> tuple[str, ...]:
    try:
        return TEMPLATE_SETS[kind]
    except KeyError:
        raise ValueError(f"templates must be one of {sorted(TEMPLATE_SETS)}, got {kind!r}") from None
