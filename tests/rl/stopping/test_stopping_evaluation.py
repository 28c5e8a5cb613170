"""The one stopping evaluation (rl.stopping.evaluation.evaluate_stopping): the learner's periodic
evaluation is a view of it, chunking never changes a count, references are handed in, bad input."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rl.stopping.learner as learner_module  # noqa: E402
from rl.stopping.config import StoppingConfig  # noqa: E402
from rl.stopping.evaluation import StoppingReference, evaluate_stopping  # noqa: E402
from rl.stopping.learner import StoppingLearner  # noqa: E402

SMALL = dict(n_steps=5, penalty=4.0, batch_size=64, eval_paths=256, test_paths=512, hidden=8)
# hand-made numbers: the evaluation only reads them (a learner never solves a PDE)
REFERENCE = StoppingReference(price=5.318294, boundary=np.linspace(26.0, 36.0, 5), european=5.059623,
                              target_boundary=np.linspace(27.0, 37.0, 5), target_p_stopping=5.30,
                              target_p_control=5.26)


def _trained(reference, steps=3):
    learner = StoppingLearner(StoppingConfig(seed=3, volatility_warmup=0, **SMALL), reference=reference)
    for step in range(steps):
        learner.train_step(learner.sample_batch(step))
    return learner


def test_periodic_evaluation_is_a_view_of_the_one_evaluation():
    learner = _trained(REFERENCE)
    periodic = learner.evaluate()
    full = evaluate_stopping(learner, SMALL["eval_paths"], REFERENCE)
    for key in ("p_stopping", "p_control", "p_stopping_cv", "p_control_crn", "rel_error_stopping",
                "rel_error_control_cv", "rel_error_stopping_crn"):
        assert periodic[f"eval/{key}"] == full[key], key
    assert periodic["eval/min_accuracy"] == full["accuracy"].min()
    assert periodic["eval/min_accuracy_vi"] == full["accuracy_vi"].min()
    assert periodic["eval/oracle_min_accuracy"] == full["oracle_accuracy"].min()
    assert periodic["eval/exercise_share"] == full["exercise_count"].sum() / (SMALL["eval_paths"] * 5)


def test_counts_do_not_depend_on_the_chunk_size(monkeypatch):
    learner = _trained(REFERENCE)
    whole = evaluate_stopping(learner, 300, REFERENCE)
    monkeypatch.setattr(learner_module, "EVAL_CHUNK", 64)  # 300 paths in five chunks
    chunked = evaluate_stopping(learner, 300, REFERENCE)
    for key in ("accuracy", "accuracy_vi", "oracle_accuracy", "exercise_count"):
        np.testing.assert_array_equal(chunked[key], whole[key])
    for key in ("p_stopping", "p_control", "p_stopping_cv", "p_control_crn"):
        assert chunked[key] == pytest.approx(whole[key], rel=1e-12, abs=1e-12), key


def test_each_metric_needs_only_its_reference_fields():
    learner = _trained(None)
    bare = evaluate_stopping(learner, 256, None)
    assert {"p_stopping", "p_control", "exercise_count"} <= set(bare)
    assert not any(key.startswith(("rel_error", "accuracy")) or key.endswith(("_cv", "_crn")) for key in bare)
    price_only = evaluate_stopping(learner, 256, StoppingReference(price=5.3))
    assert "rel_error_stopping" in price_only and "p_stopping_cv" not in price_only
    assert "accuracy" not in price_only
    vi_only = evaluate_stopping(learner, 256, StoppingReference(price=5.3, boundary=REFERENCE.boundary))
    np.testing.assert_array_equal(vi_only["accuracy"], vi_only["accuracy_vi"])  # no oracle: the VI boundary
    assert "oracle_accuracy" not in vi_only and "p_stopping_crn" not in vi_only


def test_too_few_paths_are_refused():
    with pytest.raises(ValueError, match="n_paths must be >= 2"):
        evaluate_stopping(_trained(None, steps=0), 1, None)


@pytest.mark.parametrize("name", ["pde", "vi"])
def test_a_reference_is_an_object_not_a_name(name):
    # the learner never solves a PDE: validation.stopping.build_reference does, and hands the result in
    with pytest.raises(ValueError, match="build_reference"):
        StoppingLearner(StoppingConfig(**SMALL), reference=name)
