"""Tests of rnn_dyn.similarity: reference values, invariances, pairwise blocks, errors."""
import numpy as np
import pytest
import scipy.linalg

from rnn_dyn import similarity as sim
from rnn_dyn.similarity import cca, cka, pairwise_distances, prepare, procrustes, svcca

SINGLE = {"cca": cca, "svcca": svcca, "cka": cka, "procrustes": procrustes}
CASES = [("cca", {}), ("svcca", {"k": 4}), ("svcca", {}), ("cka", {}),
         ("cka", {"debiased": True}), ("procrustes", {}), ("procrustes", {"kind": "euclidean"})]


def rng(seed=0):
    return np.random.default_rng(seed)


def distance(metric, X, Y, **options):
    value = SINGLE[metric](X, Y, **options)
    return value if metric == "procrustes" else 1.0 - value


def networks(n_nets=6, n_samples=120, widths=(8, 10, 12), seed=0):
    """Networks sharing a low-rank latent, with their own mixing and noise."""
    g = rng(seed)
    latent = g.standard_normal((n_samples, 3))
    out = []
    for i in range(n_nets):
        w = widths[i % len(widths)]
        out.append(latent @ g.standard_normal((3, w)) + 0.5 * g.standard_normal((n_samples, w)))
    return out


def random_rotation(d, seed=1):
    return np.linalg.qr(rng(seed).standard_normal((d, d)))[0]


# ------------------------------------------------------ slow references
def ref_cca(X, Y):
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    sxx, syy, sxy = Xc.T @ Xc, Yc.T @ Yc, Xc.T @ Yc
    wx = np.linalg.inv(np.real(scipy.linalg.sqrtm(sxx)))
    wy = np.linalg.inv(np.real(scipy.linalg.sqrtm(syy)))
    return np.linalg.svd(wx @ sxy @ wy, compute_uv=False)


def ref_svcca(X, Y, k):
    def reduce(A):
        U, s, _ = np.linalg.svd(A - A.mean(0), full_matrices=False)
        return U[:, :k] * s[:k]
    return ref_cca(reduce(X), reduce(Y)).mean()


def ref_cka(X, Y):
    n = len(X)
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = X @ X.T, Y @ Y.T
    hsic = lambda A, B: np.trace(A @ H @ B @ H)  # noqa: E731
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def ref_cka_debiased(X, Y):
    """Unbiased HSIC of Song et al. (2012) on linear Gram matrices."""
    n = len(X)

    def hsic(K, L):
        K, L = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
        one = np.ones(n)
        return (np.trace(K @ L) + one @ K @ one * (one @ L @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))
    K, L = X @ X.T, Y @ Y.T
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def ref_procrustes(X, Y, kind):
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    d = max(X.shape[1], Y.shape[1])
    Xc = np.pad(Xc, ((0, 0), (0, d - X.shape[1])))
    Yc = np.pad(Yc, ((0, 0), (0, d - Y.shape[1])))
    R, _ = scipy.linalg.orthogonal_procrustes(Yc, Xc)
    if kind == "euclidean":
        return np.linalg.norm(Xc - Yc @ R) / np.sqrt(len(X))
    return np.arccos(np.sum(Xc * (Yc @ R)) / (np.linalg.norm(Xc) * np.linalg.norm(Yc)))


# ------------------------------------------------------- reference values
def test_kornblith_demo_values():
    np.random.seed(1337)
    X = np.random.randn(100, 10)
    Y = np.random.randn(100, 10) + X
    assert cka(X, Y) == pytest.approx(0.55761, abs=1e-5)
    assert cka(X, Y, debiased=True) == pytest.approx(0.51346, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_slow_references(seed):
    X, Y = networks(2, 150, (9, 12), seed)
    value, rho = cca(X, Y, return_coefs=True)
    np.testing.assert_allclose(rho, ref_cca(X, Y), atol=1e-10)
    assert value == pytest.approx(ref_cca(X, Y).mean(), abs=1e-10)
    assert svcca(X, Y, k=5) == pytest.approx(ref_svcca(X, Y, 5), abs=1e-10)
    assert cka(X, Y) == pytest.approx(ref_cka(X, Y), abs=1e-12)
    assert cka(X, Y, debiased=True) == pytest.approx(ref_cka_debiased(X, Y), abs=1e-10)
    for kind in ("angular", "euclidean"):
        assert procrustes(X, Y, kind=kind) == pytest.approx(ref_procrustes(X, Y, kind), abs=1e-9)


def test_debiased_cka_is_returned_as_it_is():
    """Unrelated data give a slightly negative unbiased estimate, not 0 (issue 14.7)."""
    g = rng(12)
    values = [cka(g.standard_normal((30, 5)), g.standard_normal((30, 5)), debiased=True)
              for _ in range(20)]
    assert min(values) < 0 and -0.2 < np.mean(values) < 0.05
    X, Y = g.standard_normal((30, 5)), g.standard_normal((30, 5))
    assert cka(X, Y, debiased=True) == pytest.approx(ref_cka_debiased(X, Y), abs=1e-12)
    D = pairwise_distances([X, Y, X + 0.1 * Y], metric="cka", debiased=True)
    assert D[0, 1] == pytest.approx(1 - ref_cka_debiased(X, Y), abs=1e-12)


def test_svcca_variance_keeps_fewest_directions():
    g = rng(3)
    X = g.standard_normal((200, 6)) * np.array([10, 5, 1, 0.1, 0.1, 0.1])
    Y = X @ g.standard_normal((6, 6)) + g.standard_normal((200, 6))
    _, rho = svcca(X, X, variance=0.95, return_coefs=True)
    assert len(rho) == 2  # 100 + 25 of 126.03 total reaches 95%
    _, rho = svcca(X, Y, variance=1.0, return_coefs=True)
    np.testing.assert_allclose(rho, ref_cca(X, Y), atol=1e-9)


# ----------------------------------------------------------- invariances
def test_identical_inputs():
    X = networks(1)[0]
    for f in (cca, svcca, cka):
        assert f(X, X) == pytest.approx(1.0, abs=1e-12)
    assert cka(X, X, debiased=True) == pytest.approx(1.0, abs=1e-12)
    assert procrustes(X, X) == pytest.approx(0.0, abs=1e-6)
    assert procrustes(X, X, kind="euclidean") == pytest.approx(0.0, abs=1e-6)


def test_cca_invariant_to_invertible_maps():
    X, Y = networks(2, 150, (10,))
    g = rng(5)
    A, B = g.standard_normal((10, 10)), g.standard_normal((10, 10))
    assert cca(X @ A + 3, Y @ B - 7) == pytest.approx(cca(X, Y), abs=1e-9)
    assert svcca(X @ A, Y @ B, variance=1.0) == pytest.approx(cca(X, Y), abs=1e-9)


@pytest.mark.parametrize("metric, options", [("svcca", {"k": 4}), ("svcca", {}), ("cka", {}),
                                             ("cka", {"debiased": True}), ("procrustes", {})])
def test_invariant_to_rotation_scaling_translation(metric, options):
    X, Y = networks(2, 150, (10,))
    moved = 3.5 * X @ random_rotation(10) + rng(2).standard_normal(10)
    assert distance(metric, moved, Y, **options) == pytest.approx(
        distance(metric, X, Y, **options), abs=1e-9)


def test_euclidean_procrustes_rotation_invariant_and_scales():
    X, Y = networks(2, 150, (10,))
    d = procrustes(X, Y, kind="euclidean")
    R = random_rotation(10)
    assert procrustes(X @ R + 4, Y, kind="euclidean") == pytest.approx(d, rel=1e-9)
    assert procrustes(2 * X, 2 * Y, kind="euclidean") == pytest.approx(2 * d, rel=1e-9)


# ------------------------------------------------------- hard numerics
def test_rank_deficient_inputs():
    g = rng(7)
    A = g.standard_normal((100, 3))
    X = np.hstack([A, A, A @ g.standard_normal((3, 6))])  # rank 3 in 12 columns
    Y = networks(1, 100, (8,), 7)[0]
    _, rho = cca(X, Y, return_coefs=True)
    assert len(rho) == 3
    assert cca(X, Y) == pytest.approx(cca(A, Y), abs=1e-9)
    assert svcca(X, Y, k=5) == pytest.approx(svcca(A, Y, k=5), abs=1e-9)
    for metric, options in CASES:
        assert np.isfinite(distance(metric, X, Y, **options))
    assert cka(X, Y) == pytest.approx(ref_cka(X, Y), abs=1e-10)
    D = pairwise_distances([X, Y, A], metric="cca")
    assert D[0, 2] == pytest.approx(0.0, abs=1e-9) and np.all(np.isfinite(D))


def test_ill_conditioned_and_extreme_scales():
    X, Y = networks(2, 200, (10,), 4)
    scales = np.logspace(0, -4, 10)  # squared singular values span 1e-8
    assert cca(X * scales, Y) == pytest.approx(cca(X, Y), abs=1e-8)
    assert cka(X * scales, Y) == pytest.approx(ref_cka(X * scales, Y), abs=1e-10)
    for f in (cca, cka, procrustes):
        assert f(1e-8 * X, 1e8 * Y) == pytest.approx(f(X, Y), abs=1e-9)
    nearly = np.hstack([X, X[:, :1] + 1e-9 * rng(1).standard_normal((200, 1))])
    assert 0.0 <= cca(nearly, Y) <= 1.0


def test_differing_widths_and_wide_inputs():
    g = rng(8)
    X, Y = g.standard_normal((40, 5)), g.standard_normal((40, 60))
    assert svcca(X, Y, k=3) == pytest.approx(ref_svcca(X, Y, 3), abs=1e-9)
    assert cka(X, Y) == pytest.approx(ref_cka(X, Y), abs=1e-10)
    assert cka(X, Y, debiased=True) == pytest.approx(ref_cka_debiased(X, Y), abs=1e-9)
    for kind in ("angular", "euclidean"):
        assert procrustes(X, Y, kind=kind) == pytest.approx(ref_procrustes(X, Y, kind), abs=1e-9)


def test_fewer_samples_than_units():
    g = rng(9)
    X, Y = g.standard_normal((20, 30)), g.standard_normal((20, 5))
    with pytest.raises(ValueError, match=r"CCA needs more samples than units in X.*\(20, 30\)"):
        cca(X, Y)
    assert 0.0 <= svcca(X, Y, k=4) <= 1.0
    with pytest.raises(ValueError, match=r"k must be < n_samples \(20\); got 20"):
        svcca(X, Y, k=20)


# ------------------------------------------------------ pairwise blocks
@pytest.mark.parametrize("metric, options", CASES)
def test_pairwise_matches_single_pairs(metric, options, monkeypatch):
    reps = networks(7, 120, (8, 10, 12))
    monkeypatch.setattr(sim, "_BLOCK_COLUMNS", 30)  # force several blocks
    D = pairwise_distances(reps, metric=metric, **options)
    expected = np.array([[0.0 if i == j else distance(metric, a, b, **options)
                          for j, b in enumerate(reps)] for i, a in enumerate(reps)])
    np.testing.assert_allclose(D, expected, atol=1e-10)
    assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)


def test_pairwise_streams_generators_and_memmaps(tmp_path):
    reps = networks(5, 100, (10,))
    D = pairwise_distances(reps, metric="svcca", k=4)
    stack = np.lib.format.open_memmap(tmp_path / "reps.npy", mode="w+", dtype=np.float32,
                                      shape=(5, 100, 10))
    stack[:] = np.array(reps)
    stack.flush()
    mapped = np.load(tmp_path / "reps.npy", mmap_mode="r")
    D32 = pairwise_distances([np.float32(r) for r in reps], metric="svcca", k=4)
    np.testing.assert_allclose(pairwise_distances(mapped, metric="svcca", k=4), D32, atol=1e-12)
    np.testing.assert_allclose(pairwise_distances((r for r in reps), metric="svcca", k=4), D,
                               atol=1e-12)


def test_rectangular_against_prepared_set():
    reps = networks(6, 100)
    ref = prepare(reps[:4], metric="procrustes", kind="euclidean")
    assert ref.n_networks == 4 and ref.n_samples == 100
    full = pairwise_distances(reps, metric="procrustes", kind="euclidean")
    R = pairwise_distances(reps[4:], ref)
    assert R.shape == (2, 4)
    np.testing.assert_allclose(R, full[4:, :4], atol=1e-12)
    np.testing.assert_allclose(pairwise_distances(ref), full[:4, :4], atol=1e-12)
    np.testing.assert_allclose(pairwise_distances(ref, reps[4:]), full[:4, 4:], atol=1e-12)
    with pytest.raises(ValueError, match="must match the prepared set's 'procrustes'"):
        pairwise_distances(reps[4:], ref, metric="cka")
    with pytest.raises(ValueError, match=r"'procrustes' \{'kind': 'euclidean'\}; "
                                         r"got None \{'kind': 'angular'\}"):
        pairwise_distances(reps[4:], ref, kind="angular")
    with pytest.raises(ValueError, match="reps and reps_b must have the same n_samples"):
        pairwise_distances([r[:50] for r in reps[4:]], ref)


def test_progress_bar_goes_to_stderr(capsys):
    pairwise_distances(networks(3), metric="cka", progress=True)
    assert "cka" in capsys.readouterr().err
    pairwise_distances(networks(3), metric="cka", progress=False)
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    X = rng().standard_normal((30, 4))
    with pytest.raises(ValueError, match=r"X and Y must have the same n_samples .*got 30 and 29"):
        cca(X, X[:29])
    with pytest.raises(ValueError, match=r"Y must be a 2-D array .*got shape \(30,\)"):
        cka(X, X[:, 0])
    with pytest.raises(ValueError, match=r"X must be a 2-D array .*got shape \(2, 30, 4\)"):
        cka(np.stack([X, X]), X)
    bad = X.copy()
    bad[0, 0], bad[1, 1] = np.nan, np.inf
    with pytest.raises(ValueError, match="X must contain only finite values; got 2 NaN/inf"):
        svcca(bad, X)
    with pytest.raises(TypeError, match="Y must be an array of real numbers; got dtype <U3"):
        procrustes(X, "abc")
    with pytest.raises(TypeError, match="X must be an array of real numbers; got dtype complex"):
        cca(X + 1j, X)
    with pytest.raises(ValueError, match="X has zero variance after centering"):
        cka(np.full((30, 4), 0.1), X)
    with pytest.raises(ValueError, match="Y has zero variance after centering"):
        svcca(X, np.zeros((30, 4)), k=2)
    with pytest.raises(ValueError, match="debiased CKA needs n_samples >= 4; got 3"):
        cka(X[:3], X[:3], debiased=True)
    with pytest.raises(ValueError, match=r"kind must be one of \['angular', 'euclidean'\]; "
                                         r"got 'cosine'\."):
        procrustes(X, X, kind="cosine")
    with pytest.raises(TypeError, match="k must be an integer; got 2.5"):
        svcca(X, X, k=2.5)
    with pytest.raises(ValueError, match=r"variance must be in \(0, 1\]; got 1.5"):
        svcca(X, X, variance=1.5)
    with pytest.raises(TypeError, match="debiased must be a bool; got 'yes'"):
        cka(X, X, debiased="yes")


def test_pairwise_bad_inputs():
    reps = networks(3)
    with pytest.raises(ValueError, match=r"metric must be one of \['cca', 'cka', 'dsa', 'procrustes', "
                                         r"'svcca'\]; got 'foo'\."):
        pairwise_distances(reps, metric="foo")
    with pytest.raises(TypeError, match=r"unexpected option\(s\) \['k'\] for metric 'cka'"):
        pairwise_distances(reps, metric="cka", k=3)
    with pytest.raises(ValueError, match=r"all representations must have the same n_samples; "
                                         r"the first has 120, reps\[1\] has 60"):
        pairwise_distances([reps[0], reps[1][:60]], metric="cka")
    with pytest.raises(ValueError, match=r"reps given as one array must be 3-D .*\(120, 8\)"):
        pairwise_distances(reps[0])
    with pytest.raises(ValueError, match="at least one representation"):
        pairwise_distances([])
    with pytest.raises(TypeError, match="reps must be a list/iterable"):
        pairwise_distances(None)
    with pytest.raises(ValueError, match="must match the prepared set's 'cca' {}; got 'cka'"):
        pairwise_distances(prepare(reps, "cka"), prepare(reps, "cca"))
    with pytest.raises(ValueError, match=r"reps\[2\] must contain only finite"):
        pairwise_distances(reps[:2] + [np.full((120, 4), np.nan)], metric="cka")
