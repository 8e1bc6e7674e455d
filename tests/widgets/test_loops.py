"""Loop widgets built headless: TuningCurve draws each trial, the best so far and, for a model-guided search,
the cost model's prediction beside each measurement."""
import math

import pytest

from aisys.compiler import loops
from widgets.loops import TuningCurve


def _log(predicted):
    log = loops.TuningLog("simulated cycles")
    for k, (cost, pred) in enumerate(zip([900.0, 400.0, 500.0, 200.0], predicted)):
        log.trials.append(loops.Trial({"t": k}, cost, predicted=pred))
    return log


def test_tuning_curve_shows_predictions_next_to_measurements():
    curve = TuningCurve(_log([math.nan, math.nan, 450.0, 300.0]), baseline=1000.0)
    svg = curve.picture.value
    assert svg.count("class='trial'") == 4 and svg.count("class='prediction'") == 2
    assert "orange rings: the model's prediction" in svg and "default schedule" in svg
    text = curve.summary()
    assert "best 200 with {'t': 3}" in text
    assert "    3         450         500    -10%" in text and "    4         300         200    +50%" in text


def test_tuning_curve_without_a_model_draws_no_predictions():
    curve = TuningCurve(_log([math.nan] * 4))
    assert "class='prediction'" not in curve.picture.value and "orange" not in curve.picture.value
    assert curve.summary() == curve.tuning_log.summary()
    with pytest.raises(loops.LoopsError, match="no legal trial"):
        loops.TuningLog("cycles").best
