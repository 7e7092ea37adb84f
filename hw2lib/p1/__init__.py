"""Problem 1: one class-conditional DDPM for both digit sets, with classifier-free guidance.

The class label joins the data set and the digit: ``label = 10 * set_index + digit`` (0-19), and
20 is the null label of guidance dropout. One model serves both sets: it halves the training
cost on 2 CPU cores and lets digit shapes be shared between the two looks.

``model`` trains, loads and samples; ``grading`` writes and scores the course's folders;
``notebook`` is what the P1 notebook shows; ``clamp`` measures the x0-hat clamp; ``look`` puts
the look statistics beside the accuracy and chooses the guidance weight on both; ``curve``,
``sweep`` and
``ablation`` are the measurements stored beside a checkpoint (sampler, guidance weight,
training recipe) that the notebooks read.
"""
from .model import (NULL_LABEL, SAMPLERS, T, class_label, grid_noise, load, reverse_steps, sample,
                    sampler_steps, train, training_tensors)
from .notebook import (accuracy_text, describe, distance_to_final, explorer, guidance_sweep,
                       network_text, predicted_x0_frames, reverse_frames, reverse_text, sampler_label,
                       sweep_columns, sweep_text)
from .grading import (classifier_test_accuracy, grading_folders, look_folders, read_grading_folder,
                      sample_to_folders, score_folders, score_table, scorers, write_grading_folder)
from . import ablation, clamp, curve, sweep
from ..look import HEADERS, with_notes
from .look import (choice_text, choose_guidance, look_references, look_text, sweep_figure,
                   sweep_look_text, sweep_table, table_formats, view)

__all__ = ["HEADERS", "NULL_LABEL", "SAMPLERS", "T", "accuracy_text", "choice_text", "choose_guidance",
           "ablation", "clamp", "class_label", "sweep", "classifier_test_accuracy", "curve", "describe",
           "distance_to_final",
           "explorer", "grading_folders",
           "grid_noise", "guidance_sweep", "load", "look_folders", "look_references", "look_text",
           "network_text", "predicted_x0_frames",
           "read_grading_folder", "reverse_frames", "reverse_steps", "reverse_text", "sample",
           "sample_to_folders", "sampler_label", "sampler_steps", "score_folders", "score_table",
           "scorers", "sweep_columns", "sweep_figure", "sweep_look_text", "sweep_table", "sweep_text", "table_formats",
           "train", "training_tensors", "view", "with_notes", "write_grading_folder"]
