"""Problem 2: DDIM on a face UNet from fixed noises; eta grid, MSE against ground truth, slerp.

Reuses :func:`hw2lib.diffusion.ddim_sample`; ``ddim`` adds the course's conventions (grid
981, 961, ..., 1; x0-hat clamped; min-max normalised outputs), ``folders`` the noise and image
files and the MSE on 0-255, ``models`` the course UNet loader and the embedded face model,
``notebook`` what the P2 notebook shows, ``observe`` its computed prose.
"""
from .ddim import (CONVENTIONS, DEFAULT_CONVENTION, N_STEPS, T, ddim_faces, diffusers_reference,
                   interpolate, sample_uint8)
from .folders import load_noises, mse_255, mse_folders, noise_paths, sample_folder, write_noises
from .models import (face_model, face_training_images, load_course_unet, load_face_model,
                     train_face_model)
from .notebook import (ALPHA, ETA, FaceSetup, detail_col, eta_grid, eta_stats, explorer,
                       grain_draws, nearest_training,
                       interpolation_rows, mse_table, norm_col, setup, std_col,
                       table_formats)
from .observe import (copies_text, eta_observation, interpolation_observation, model_text,
                      mse_text)

__all__ = ["ALPHA", "CONVENTIONS", "DEFAULT_CONVENTION", "ETA", "FaceSetup", "N_STEPS", "T",
           "ddim_faces", "detail_col", "diffusers_reference", "eta_grid", "eta_observation",
           "copies_text", "eta_stats", "explorer", "face_model", "face_training_images",
           "grain_draws", "nearest_training",
           "interpolate",
           "interpolation_observation", "interpolation_rows", "load_course_unet",
           "load_face_model", "load_noises", "model_text", "mse_255", "mse_folders", "mse_table",
           "mse_text", "noise_paths", "norm_col", "sample_folder", "sample_uint8", "setup",
           "std_col", "table_formats", "train_face_model", "write_noises"]
