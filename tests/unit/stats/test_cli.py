"""python -m abacus.stats: JSON problems in, answers out, malformed input refused with exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from abacus.core import planning

EXAMPLE = {
    "metric": {"kind": "conversion"},
    "control": "control",
    "alpha": 0.05,
    "sequential": True,
    "weights": {"control": 50, "test": 50},
    "variants": [
        {"key": "control", "exposures": 10000, "conversions": 1000},
        {"key": "test", "exposures": 10000, "conversions": 1080},
    ],
}
PLAN = {"plan": {"kind": "conversion", "baseline": 0.1, "mde": 0.05, "alpha": 0.05, "power": 0.8, "variants": 2}}


def run(document) -> subprocess.CompletedProcess:
    stdin = document if isinstance(document, str) else json.dumps(document)
    return subprocess.run([sys.executable, "-m", "abacus.stats"], input=stdin, capture_output=True, text=True)


def test_one_problem():
    done = run(EXAMPLE)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    test = answer["variants"][1]
    assert set(test) >= {"key", "exposures", "mean", "credible_interval", "probability_to_be_best", "expected_loss"}
    assert set(test) >= {"lift", "p_value", "p_value_adjusted", "significant", "p_value_fixed", "relative_ci_fixed"}
    assert set(answer["srm"]) == {"p_value", "mismatch"}
    assert set(answer["verdict"]) >= {"decision", "variant", "reason"}


def test_array_answers_in_order():
    done = run([PLAN, EXAMPLE, PLAN | {"plan": PLAN["plan"] | {"kind": "mean", "baseline_mean": 5, "baseline_sd": 2}}])
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert answers[0] == {"exposures_per_variant": planning.exposures_for_conversion(0.1, 0.05, 0.05, 0.8)}
    assert answers[1]["variants"][0]["key"] == "control"
    assert "exposures_per_variant" in answers[2]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ("{not json", "input"),
        ({"metric": {"kind": "ratio"}, "variants": []}, "metric.kind"),
        (EXAMPLE | {"variants": [{"key": "control", "exposures": 5}, {"key": "t", "exposures": 5}]}, "conversions"),
        (EXAMPLE | {"alpha": 2}, "alpha"),
        ([PLAN, {"plan": {"kind": "conversion"}}], "problem 1: plan.baseline"),
        (
            EXAMPLE | {"variants": [EXAMPLE["variants"][0] | {"pre_sum_cubes": 3.0}, EXAMPLE["variants"][1]]},  # type: ignore[index]
            "variants.0: pre_sum_cubes, cross_sum_outcome_squared and cross_sum_pre_squared need the covariate",
        ),
        (EXAMPLE | {"variants": [EXAMPLE["variants"][0] | {"sum_cubes": "x"}, EXAMPLE["variants"][1]]}, "sum_cubes"),  # type: ignore[index]
    ],
)
def test_malformed_input_exits_2_naming_the_field(document, field):
    done = run(document)
    assert done.returncode == 2
    assert field in done.stderr and done.stdout == ""


def test_an_arm_of_one_user_gets_null_p_values_from_the_command_line_too():
    """Issue 13, item 8, as a problem: every design answers as analyse() does."""
    one = {"key": "control", "exposures": 1, "sum": 1.0, "sum_squares": 1.0}
    many = {"key": "b", "exposures": 99, "sum": 118.8, "sum_squares": 99 * 1.2**2 + 98 * 0.5**2}
    base: dict[str, object] = {"metric": {"kind": "mean"}, "weights": {"control": 1, "b": 99}, "variants": [one, many]}
    designs: list[dict[str, object]] = [{"sequential": False}, {"design": "msprt"}, {"planned_exposures": 200}]
    done = run([base | design for design in designs])
    assert done.returncode == 0, done.stderr
    for answer in json.loads(done.stdout):
        b = answer["variants"][1]
        assert b["p_value"] is None and b["lift"]["relative_ci"] is None and b["significant"] is False
        assert b.get("p_value_fixed") is None and answer["verdict"]["decision"] == "keep_running"


def test_values_whose_sum_squared_overflows_get_the_answer_of_the_same_values_near_1():
    """Issue 13, item 7, as a problem: it used to end in an OverflowError's traceback."""
    scale = 2.0**495

    def problem(by: float) -> dict[str, object]:
        arms = [("control", 1.0, 1.0), ("b", 1.004, 1.0)]
        variants = [
            {
                "key": key,
                "exposures": 10**6,
                "sum": mean * 1e6 * by,
                "sum_squares": (sd * sd + mean * mean) * 1e6 * by * by,
            }
            for key, mean, sd in arms
        ]
        return {"metric": {"kind": "mean"}, "sequential": False, "variants": variants}

    done = run([problem(1.0), problem(scale)])
    assert done.returncode == 0, done.stderr
    near_1, huge = (answer["variants"] for answer in json.loads(done.stdout))
    assert huge[1]["p_value"] == pytest.approx(near_1[1]["p_value"], rel=1e-9)
    assert huge[1]["mean"] == pytest.approx(near_1[1]["mean"] * scale, rel=1e-12)


def test_the_sums_of_cubes_are_optional_and_correct_a_skewed_unequal_split():
    """Issue 28, item 6: the same look with and without the sums of cubes (as a snapshot stored
    before they were kept has it): both analyse; with them the test is corrected for skewness."""
    rng = np.random.default_rng(28)
    arms = {
        key: np.where(rng.random(n) < 0.3, rng.lognormal(3, 1.5, n), 0.0) for key, n in (("control", 4000), ("b", 1000))
    }
    variants = [
        {"key": key, "exposures": len(y), "sum": y.sum(), "sum_squares": (y**2).sum(), "sum_cubes": (y**3).sum()}
        for key, y in arms.items()
    ]
    without = [{name: value for name, value in v.items() if name != "sum_cubes"} for v in variants]
    problem: dict[str, object] = {"metric": {"kind": "mean"}, "sequential": False}
    done = run([problem | {"variants": variants}, problem | {"variants": without}])
    assert done.returncode == 0, done.stderr
    corrected, uncorrected = json.loads(done.stdout)
    assert corrected["variants"][1]["sum_cubes"] == variants[1]["sum_cubes"]
    assert "sum_cubes" not in uncorrected["variants"][1]
    assert corrected["variants"][1]["p_value"] != pytest.approx(uncorrected["variants"][1]["p_value"], rel=1e-3)
    assert any(line.startswith("Skewness:") for line in corrected["explanation"])
