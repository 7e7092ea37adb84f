"""Personalization of text-to-image diffusion: textual inversion, generation with the project's
DDIM, the course's CLIP scoring, and Stable Diffusion loading from local files only."""
