"""Problem 3b: personalization of text-to-image diffusion by textual inversion.

:mod:`.t2i` is the small text-to-image protocol that :mod:`.sd` (Stable Diffusion, the course's
model, loaded from local files only) and :mod:`.scene_model` (the embedded pixel-space scene
model over the digit scenes of :mod:`.scenes`) implement; :mod:`.textual_inversion` and
:mod:`.compose` (sampling, region-masked composition, the course's output layout) run on either.
:mod:`.concepts` holds the embedded path's two new concepts and their scores, :mod:`.score` the
course's CLIP scoring, :mod:`.cli` the ``ti`` commands, :mod:`.notebook` the report's glue
and :mod:`.findings` its findings paragraph.
"""
