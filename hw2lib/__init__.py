"""hw2lib: the library behind hw2report (DLCV HW2: diffusion models and CLIP).

Subpackages: ``data`` (embedded builders, course readers), ``viz`` (figures), ``report``
(notebook runs and the HTML report).
"""
__version__ = "0.1.0"
