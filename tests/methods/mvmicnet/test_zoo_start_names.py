"""Which zoo entry a Study A network starts from, and the errors of a start that cannot be taken."""

from __future__ import annotations

import ast

import pytest

from medtask.errors import InvalidParameterError
from medtask.methods.mvmicnet.study import zoo_codec_name
from medtask.methods.mvmicnet.zoo import DETECTOR_OPTIONS
from medtask.pipeline.profiles import parameter_cell, resolve_notebook


def test_rate_points_map_to_the_zoo_codecs_at_their_quality():
    assert zoo_codec_name("mbt2018-mean", 0.013, "cvc") == "mbt2018-mean-cvc-q4"
    assert zoo_codec_name("cheng2020-anchor", 0.0018, "bccd") == "cheng2020-anchor-bccd-q1"


def test_a_lambda_off_the_zoo_grid_is_refused_with_the_grid():
    with pytest.raises(InvalidParameterError, match="0.0067"):
        zoo_codec_name("mbt2018-mean", 0.005, "cvc")


def test_the_zoo_detector_has_chapter_a2s_detector_budgets():
    """The parameters cell must hold literals, so A2's default budgets are written there and in the zoo: kept equal."""
    defaults = parameter_cell(resolve_notebook("a2_compression_detection"))
    assert ast.literal_eval(defaults["detector_options"]) == DETECTOR_OPTIONS
