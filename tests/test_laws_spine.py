"""Law objects: catalog entries, numpy vs cvxpy agreement, closed forms, law files."""

import numpy as np
import pytest

from laws import ChinchillaLaw, LawError, catalog, get_law


def test_catalog_ids_and_citations():
    laws = catalog()
    for law_id in ("chinchilla-epoch-2024", "chinchilla-hoffmann-2022", "chinchilla-hoffmann-2022-unrounded",
                   "kaplan-2020"):
        law = laws[law_id]
        assert law.info.citation and law.info.params_counts and law.info.status
    assert get_law().id == "chinchilla-epoch-2024"


def test_coefficients_match_reference():
    # laws.md §15 "safe to hard-code" table
    assert dict(get_law("chinchilla-epoch-2024").coefficients) == {
        "E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
    assert dict(get_law("chinchilla-hoffmann-2022").coefficients) == {
        "E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    un = get_law("chinchilla-hoffmann-2022-unrounded").coefficients
    # TeX log-form values: a = 6.0073404, b = 6.0179186, e = 0.5267228 (laws.md §2)
    assert np.log(un["A"]) == pytest.approx(6.0073404, abs=1e-4)
    assert np.log(un["B"]) == pytest.approx(6.0179186, abs=1e-4)
    assert np.log(un["E"]) == pytest.approx(0.5267228, abs=1e-4)
    # kaplan-2020 also carries the learning-curve and critical-batch coefficients (tests/test_laws_catalog.py)
    kaplan = get_law("kaplan-2020").coefficients
    assert {k: kaplan[k] for k in ("Nc", "Dc", "alpha_N", "alpha_D")} == {"Nc": 6.4e13, "Dc": 1.8e13,
                                                                          "alpha_N": 0.076, "alpha_D": 0.103}


def test_chinchilla_predict_by_hand():
    law = get_law("chinchilla-hoffmann-2022")
    # 70B params, 1.4T tokens: 1.69 + 406.4/70e9^0.34 + 410.7/1.4e12^0.28
    by_hand = 1.69 + 406.4 * 70e9 ** -0.34 + 410.7 * 1.4e12 ** -0.28
    assert float(law.predict(params=70e9, tokens=1.4e12)) == pytest.approx(by_hand, rel=1e-12)
    arr = law.predict(params=np.array([1e9, 1e10]), tokens=np.array([2e10, 2e11]))
    assert arr.shape == (2,) and arr[1] < arr[0]


def test_kaplan_predict_by_hand():
    law = get_law("kaplan-2020")
    n, d = 1e9, 2e10
    by_hand = ((6.4e13 / n) ** (0.076 / 0.103) + 1.8e13 / d) ** 0.103
    assert float(law.predict(params=n, tokens=d)) == pytest.approx(by_hand, rel=1e-12)
    # infinite data limit: Kaplan L(N) with the joint-fit constants
    assert float(law.predict(params=n, tokens=1e30)) == pytest.approx((6.4e13 / n) ** 0.076, rel=1e-6)


@pytest.mark.parametrize("law_id", ["chinchilla-epoch-2024", "kaplan-2020"])
def test_cvxpy_expression_equals_numpy(law_id):
    import cvxpy as cp

    law = get_law(law_id)
    n, d = cp.Variable(pos=True), cp.Variable(pos=True)
    expr = law.expr(params=n, tokens=d)
    assert expr.is_dgp()
    n.value, d.value = 3e9, 7e10
    assert expr.value == pytest.approx(float(law.predict(params=3e9, tokens=7e10)), rel=1e-12)


def test_gopher_budget_unrounded_gives_40b():
    # Hoffmann et al. 2022 Fig. 4 caption: ~40B at the Gopher budget 5.76e23; laws.md §2 oracle 4.04e10.
    n, d = get_law("chinchilla-hoffmann-2022-unrounded").compute_optimal(5.76e23)
    assert n == pytest.approx(4.04e10, rel=5e-3)
    assert d == pytest.approx(2.38e12, rel=5e-3)
    n_r, _ = get_law("chinchilla-hoffmann-2022").compute_optimal(5.76e23)
    assert n_r == pytest.approx(3.22e10, rel=5e-3)  # rounded constants: laws.md §2 oracle


def test_bad_inputs_raise_law_error():
    law = get_law()
    with pytest.raises(LawError):
        law.predict(params=-1, tokens=1e9)
    with pytest.raises(LawError):
        law.predict(params=1e9)
    with pytest.raises(LawError):
        get_law("no-such-law")


def test_law_file_round_trip_with_bootstrap(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text(
        '[[law]]\nid = "mine"\nform = "chinchilla"\ntitle = "t"\ncitation = "fitted"\nstatus = "fitted"\n'
        "[law.coefficients]\nE = 1.8\nA = 480.0\nB = 2000.0\nalpha = 0.35\nbeta = 0.36\n"
        "[law.bootstrap]\nE = [1.7, 1.8, 1.9]\nA = [470.0, 480.0, 490.0]\nB = [1900.0, 2000.0, 2100.0]\n"
        "alpha = [0.34, 0.35, 0.36]\nbeta = [0.35, 0.36, 0.37]\n"
    )
    law = get_law(str(f))
    assert isinstance(law, ChinchillaLaw) and law.id == "mine"
    samples = law.predict_bootstrap(params=1e9, tokens=2e10)
    assert samples.shape == (3,)
    assert samples[1] == pytest.approx(float(law.predict(params=1e9, tokens=2e10)))


@pytest.mark.parametrize(
    "body,needle",
    [
        ("not toml [", "not valid TOML"),
        ('[[law]]\nid = "x"\nform = "nope"\ntitle = "t"\ncitation = "c"\n[law.coefficients]\nE = 1.0\n',
         "unknown form"),
        ('[[law]]\nid = "x"\nform = "chinchilla"\ntitle = "t"\ncitation = "c"\n[law.coefficients]\nE = 1.0\n',
         "missing"),
        ('[[law]]\nid = "x"\nform = "chinchilla"\ntitle = "t"\ncitation = "c"\n[law.coefficients]\n'
         "E = nan\nA = 1.0\nB = 1.0\nalpha = 0.3\nbeta = 0.3\n", "finite"),
    ],
)
def test_malformed_law_files(tmp_path, body, needle):
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(LawError) as info:
        get_law(str(f))
    assert needle in str(info.value) and "\n" not in str(info.value)
