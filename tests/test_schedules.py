"""Each learning-rate schedule against values worked out by hand."""

import pytest

from spd.optim.schedules import (
    constant,
    half_cosine,
    linear_decay,
    linear_warmup,
    named,
    quarter_cosine,
)


def test_constant():
    assert [constant(0.5)(t) for t in (0, 7, 10**6)] == [0.5, 0.5, 0.5]


def test_quarter_cosine_runs_from_lr_to_zero_at_the_last_step():
    # T = 5: cos(pi/2 * t/4) = 1, cos(pi/8), 1/sqrt(2), cos(3 pi/8), 0
    lrs = [quarter_cosine(2.0, 5)(t) for t in range(5)]
    assert lrs == pytest.approx([2.0, 1.8477591, 1.4142136, 0.7653669, 0.0], abs=1e-7)
    assert quarter_cosine(2.0, 1)(0) == 2.0  # one step: no decay


def test_half_cosine_halves_at_mid_run():
    # T = 4: (1 + cos(pi t/4)) / 2 = 1, (2 + sqrt 2)/4, 1/2, (2 - sqrt 2)/4
    lrs = [half_cosine(2.0, 4)(t) for t in range(4)]
    assert lrs == pytest.approx([2.0, 1.7071068, 1.0, 0.2928932], abs=1e-7)


def test_linear_warmup_then_the_schedule_from_its_own_step_zero():
    # W = 4: lr/4, lr/2, 3 lr/4, lr; then a quarter cosine over the 3 remaining steps
    schedule = linear_warmup(1.0, 4, quarter_cosine(1.0, 3))
    lrs = [schedule(t) for t in range(7)]
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 0.7071068, 0.0], abs=1e-7)
    assert linear_warmup(1.0, 0, constant(0.3))(0) == 0.3  # no warm-up


def test_named_schedules():
    assert named("constant", 0.1, 10)(9) == 0.1
    assert named("cosine", 1.0, 3)(1) == pytest.approx(0.7071068, abs=1e-7)
    assert named("linear", 1.0, 4)(2) == 0.5
    with pytest.raises(KeyError):
        named("step", 1.0, 3)


def test_linear_decay_runs_from_lr_down_by_lr_over_steps():
    schedule = linear_decay(0.5, 4)
    assert [schedule(t) for t in range(4)] == [0.5, 0.375, 0.25, 0.125]
