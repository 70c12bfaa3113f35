"""The map ``s' = F(s, x)`` of any recurrent cell, and its linearization.

:class:`DynamicalMap` turns one of three things into a map on population-shaped
tensors ``s [n_networks, batch, n_state]``, ``x [n_networks, batch, n_inputs]``
that runs in float32 (the search) and in float64 (the polish and the Jacobians):

- a population cell (:mod:`rnn_dyn.cells`): ``cell.transition``, all members;
- any Keras RNN cell (``state_size`` and ``cell(x, states)``), one network:
  multi-state cells are analysed in the concatenation of their states in
  ``state_size`` order, except Keras' ``LSTMCell`` (states ``[h, c]``), whose
  dynamical state is ``s = [c; h]`` as in SPEC §1 and our own LSTM;
- a callable ``F(h, x) -> h_next`` on ``[batch, n_state]`` and ``[batch,
  n_inputs]`` tensors, one network; it must accept float32 and float64 tensors.

Cells are evaluated in float64 through a float64 copy (``from_config`` with
``dtype='float64'`` and the same weights, or an imported network's exact
float64 parameters: :func:`float64_weights`), refreshed from the cell on every
:meth:`DynamicalMap.sync`.  :func:`compute_jacobians` returns ``J = dF/ds`` and
``B = dF/dx`` (``tf.GradientTape.batch_jacobian``, vectorized over outputs),
:func:`eigendecomposition` ``J = R diag(lambda) L`` with eigenvalues sorted by
magnitude and ``L = R^-1``, and :func:`polish` refines approximate roots of
``F(s, x) − s`` by a trust-region (dogleg) Newton method in float64.
"""
from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from rnn_dyn.cells.base import PopulationCell
from rnn_dyn.population import Population


def _float64_copy(cell, n_inputs):
    config = dict(cell.get_config(), dtype="float64")
    copy = type(cell).from_config(config)
    copy.build((None, n_inputs))
    return copy


def float64_weights(cell) -> list:
    """A cell's weights in float64, for its float64 copy.

    An imported network's cell (:mod:`rnn_dyn.importers`) carries its
    parameters combined in float64 as ``cell.float64_weights`` (in
    ``get_weights`` order); they are used while they still round to the
    cell's float32 weights (the cell has not been changed since), so the
    float64 map is the original network's.  Otherwise the float32 weights,
    cast.
    """
    weights = [np.asarray(w, np.float64) for w in cell.get_weights()]
    exact = getattr(cell, "float64_weights", None)
    if exact is None or len(exact) != len(weights):
        return weights
    exact = [np.asarray(e, np.float64) for e in exact]
    same = all(e.shape == w.shape and np.array_equal(e.astype(np.float32), w) for e, w in zip(exact, weights))
    return exact if same else weights


class DynamicalMap:
    """A cell or callable as the map ``F(s, x)`` on ``[n_networks, batch, ...]`` tensors.

    Parameters
    ----------
    cell : PopulationCell, keras RNN cell or callable
        See the module docstring.
    n_inputs : int
        Input size (needed to build the float64 copy of a Keras cell).
    n_state : int, optional
        State size of a callable (cells know theirs).

    Attributes
    ----------
    kind : {'population', 'keras', 'callable'}
    n_networks, n_state, n_inputs : int
    """

    def __init__(self, cell, n_inputs, n_state=None):
        try:  # weak, so that the cache keyed by the cell does not keep it alive
            self._cell = weakref.ref(cell)
        except TypeError:
            self._cell = lambda: cell
        self.n_inputs, self.n_networks = int(n_inputs), 1
        if isinstance(cell, PopulationCell):
            self.kind, self.n_networks, self.n_state = "population", cell.n_networks, cell.n_state
        elif isinstance(cell, keras.layers.Layer) and hasattr(cell, "state_size"):
            self.kind = "keras"
            sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
            self.sizes = [int(s) for s in sizes]
            self.order = [1, 0] if isinstance(cell, keras.layers.LSTMCell) else list(range(len(sizes)))
            self.n_state = sum(self.sizes)
        else:
            self.kind, self.n_state = "callable", int(n_state)
        self._copy = None
        if self.kind != "callable":
            try:
                self._copy = _float64_copy(cell, self.n_inputs)
            except Exception as err:  # noqa: BLE001 - any failure means the same for the user
                raise TypeError(
                    f"cell {type(cell).__name__} could not be copied in float64 through "
                    f"get_config/from_config ({err}); pass a callable F(h, x) that accepts "
                    "float64 tensors instead.") from err
        self.sync()
        spec = lambda dtype: (tf.TensorSpec([None, None, self.n_state], dtype),  # noqa: E731
                              tf.TensorSpec([None, None, self.n_inputs], dtype))
        self.f64 = tf.function(lambda s, x: self(s, x), input_signature=spec(tf.float64),
                               autograph=False)
        self.jacobians = tf.function(self._jacobians, input_signature=spec(tf.float64),
                                     autograph=False)
        self.functions = {}  # tf.functions that other modules build on this map, by name

    @property
    def cell(self):
        return self._cell()

    def sync(self):
        """Copy the cell's current weights into its float64 copy (:func:`float64_weights`)."""
        if self._copy is not None:
            self._copy.set_weights(float64_weights(self.cell))

    def __call__(self, s, x):
        """``F(s, x)`` for ``s [n_networks, batch, n_state]``, ``x [n_networks, batch, n_inputs]``.

        Runs in the dtype of ``s`` (float32 or float64).
        """
        cell = self._copy if (s.dtype == tf.float64 and self._copy is not None) else self.cell
        if self.kind == "population":
            return cell.transition(s, x)
        if self.kind == "callable":
            return tf.convert_to_tensor(cell(s[0], x[0]))[None]
        parts = tf.split(s[0], [self.sizes[i] for i in self.order], axis=-1)
        states = [None] * len(parts)
        for part, i in zip(parts, self.order):
            states[i] = part
        _, new = cell(x[0], states, training=False)
        new = list(new) if isinstance(new, (list, tuple)) else [new]
        return tf.concat([new[i] for i in self.order], axis=-1)[None]

    def _jacobians(self, s, x):
        """``(F, J, B)``: ``F [P, b, n]``, ``J = dF/ds [P, b, n, n]``, ``B = dF/dx [P, b, n, m]``."""
        n, m = self.n_state, self.n_inputs
        shape = tf.shape(s)
        z = tf.reshape(tf.concat([s, x], axis=-1), [-1, n + m])  # one row per point
        with tf.GradientTape() as tape:
            tape.watch(z)
            zs = tf.reshape(z, [shape[0], shape[1], n + m])
            f = tf.reshape(self(zs[..., :n], zs[..., n:]), [-1, n])
        jac = tf.reshape(tape.batch_jacobian(f, z), [shape[0], shape[1], n, n + m])
        return tf.reshape(f, shape), jac[..., :n], jac[..., n:]


_MAPS = weakref.WeakKeyDictionary()


def make_map(cell, n_inputs, n_state=None) -> DynamicalMap:
    """The (cached) :class:`DynamicalMap` of ``cell``, its weights synced.

    The map, its float64 copy and its traced functions are kept while
    ``cell`` lives, so later calls skip tracing.  A :class:`Population` (also an
    imported network) stands for its cell.
    """
    cell = cell.cell if isinstance(cell, Population) else cell
    is_cell = isinstance(cell, keras.layers.Layer)
    key = (int(n_inputs), None if (is_cell or n_state is None) else int(n_state))
    try:
        cached = _MAPS.setdefault(cell, {})
    except TypeError:  # not weak-referenceable: no cache
        return DynamicalMap(cell, n_inputs, n_state)
    if key not in cached:
        cached[key] = DynamicalMap(cell, n_inputs, n_state)
    else:
        cached[key].sync()
    return cached[key]


def cell_sizes(cell, h, x):
    """Check that ``cell`` can be analysed; return ``(n_networks, n_state, n_inputs)``.

    ``h`` and ``x`` are sample states and inputs (any leading shape), used for
    the sizes of a callable and to check that it runs in float64.

    Raises
    ------
    TypeError
        ``cell`` is neither a cell nor a callable, or a callable fails on float64.
    ValueError
        A Keras cell that is not built, or a callable returning the wrong shape.
    """
    h, x = np.asarray(h), np.asarray(x)
    cell = cell.cell if isinstance(cell, Population) else cell
    if isinstance(cell, PopulationCell):
        return cell.n_networks, cell.n_state, int(cell.kernel.shape[1])
    n_state, n_inputs = h.shape[-1] if h.ndim else 0, x.shape[-1] if x.ndim else 0
    if isinstance(cell, keras.layers.Layer):
        if not hasattr(cell, "state_size"):
            raise TypeError(f"cell {type(cell).__name__} is a Keras layer without state_size; "
                            "pass an RNN cell or a callable F(h, x).")
        if not cell.built:
            raise ValueError(f"cell {type(cell).__name__} must be built (call it once) before "
                             "it can be analysed.")
        sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        return 1, sum(int(s) for s in sizes), n_inputs
    if not callable(cell):
        raise TypeError("cell must be a population cell, a Keras RNN cell or a callable "
                        f"F(h, x); got {type(cell).__name__}.")
    h1 = tf.constant(h.reshape(-1, n_state)[:1], tf.float64)
    try:
        out = cell(h1, tf.constant(x.reshape(-1, n_inputs)[:1], tf.float64))
    except Exception as err:  # noqa: BLE001 - any failure means the same for the user
        raise TypeError("cell F(h, x) must accept float64 tensors [batch, n_state] and "
                        f"[batch, n_inputs] (for the float64 polish); calling it failed: {err}") from err
    if tuple(out.shape) != (1, n_state) or out.dtype != tf.float64:
        raise ValueError(f"cell F(h, x) must return [batch, n_state={n_state}] in the dtype of h; "
                         f"got shape {tuple(out.shape)[1:]} and dtype {out.dtype.name}.")
    return 1, n_state, n_inputs


def compute_jacobians(cell, h, x):
    """``J = dF/dh`` and ``B = dF/dx`` of a cell or callable, in float64.

    Parameters
    ----------
    cell : PopulationCell, keras RNN cell or callable
    h : array_like [n_networks, batch, n_state] (or [batch, n_state] for one network)
    x : array_like, same leading shape as ``h``, last axis ``n_inputs``

    Returns
    -------
    jacobian : ndarray [..., n_state, n_state]
    input_jacobian : ndarray [..., n_state, n_inputs]
    """
    h, x = np.asarray(h, np.float64), np.asarray(x, np.float64)
    _, n_state, n_inputs = cell_sizes(cell, h, x)
    one = h.ndim == 2
    if one:
        h, x = h[None], x[None]
    if h.ndim != 3 or h.shape[-1] != n_state or x.shape[:-1] != h.shape[:-1] or x.shape[-1] != n_inputs:
        raise ValueError(f"h and x must have shapes [..., batch, n_state={n_state}] and "
                         f"[..., batch, n_inputs={n_inputs}]; got {h.shape} and {x.shape}.")
    fmap = make_map(cell, n_inputs, n_state)
    _, jac, jac_x = fmap.jacobians(tf.constant(h), tf.constant(x))
    jac, jac_x = jac.numpy(), jac_x.numpy()
    return (jac[0], jac_x[0]) if one else (jac, jac_x)


def eigendecomposition(jacobian):
    """Eigenvalues and right/left eigenvectors, sorted by magnitude (descending).

    Parameters
    ----------
    jacobian : ndarray [..., n, n]

    Returns
    -------
    eigvals : ndarray [..., n] complex
    right : ndarray [..., n, n] complex
        Right eigenvectors as columns: ``J R = R diag(eigvals)``.
    left : ndarray [..., n, n] complex
        Left eigenvectors as rows, ``L = R^-1``, so ``J = R diag(eigvals) L``
        and ``L J = diag(eigvals) L``.
    """
    jacobian = np.asarray(jacobian, np.float64)
    if jacobian.shape[-1] == 0 or jacobian.size == 0:
        shape = jacobian.shape
        return (np.zeros(shape[:-1], complex), np.zeros(shape, complex), np.zeros(shape, complex))
    vals, right = np.linalg.eig(jacobian)
    order = np.argsort(-np.abs(vals), axis=-1, kind="stable")
    vals = np.take_along_axis(vals, order, -1).astype(complex)
    right = np.take_along_axis(right, order[..., None, :], -1).astype(complex)
    return vals, right, np.linalg.inv(right)


def _solve(a, b):
    """Batched ``a⁻¹ b`` (``b [..., n]``); least squares where ``a`` is singular."""
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        flat_a, flat_b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, b.shape[-1])
        out = [np.linalg.lstsq(ai, bi, rcond=None)[0] for ai, bi in zip(flat_a, flat_b)]
        return np.reshape(out, b.shape)


def _dogleg(jac, r, radius):
    """Dogleg steps ``p [..., n]`` for ``min ½‖r + J p‖²`` within ``‖p‖ <= radius``; and ``‖p‖``.

    The Newton step ``−J⁻¹r`` where it fits, else the path from the Cauchy
    (steepest-descent minimizer) step towards it, cut at the radius.
    """
    g = np.einsum("...ji,...j->...i", jac, r)  # gradient of the model, Jᵀr
    newton = -_solve(jac, r)
    newton = np.where(np.isfinite(newton), newton, np.inf)
    jg = np.einsum("...ij,...j->...i", jac, g)
    gg = np.sum(g * g, -1)
    cauchy = -(gg / np.maximum(np.sum(jg * jg, -1), 1e-300))[..., None] * g
    n_newton, n_cauchy = np.linalg.norm(newton, axis=-1), np.linalg.norm(cauchy, axis=-1)
    d = np.where(np.isfinite(newton), newton, 0.0) - cauchy
    a, b = np.sum(d * d, -1), 2 * np.sum(cauchy * d, -1)
    c = n_cauchy ** 2 - radius ** 2
    tau = (-b + np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / np.maximum(2 * a, 1e-300)
    step = np.where((n_newton <= radius)[..., None], np.where(np.isfinite(newton), newton, 0.0),
                    np.where((n_cauchy >= radius)[..., None],
                             cauchy * (radius / np.maximum(n_cauchy, 1e-300))[..., None],
                             cauchy + np.clip(tau, 0.0, 1.0)[..., None] * d))
    return step, np.linalg.norm(step, axis=-1)


def polish(fmap, h, x, active, tol_exact=1e-20, max_polish=100, radius=1.0, stall=(10, 0.5)):
    """Roots of ``r(h) = F(h, x) − h`` by a trust-region (dogleg) Newton method in float64.

    Each point minimizes ``q = ½‖r‖²`` with dogleg steps (:func:`_dogleg`) on the
    model ``½‖r + J_r p‖²``, ``J_r = J − I``, inside its own trust radius.  A step
    is accepted when the actual reduction of ``q`` is at least 1e-4 of the
    model's predicted one (``ρ``); the radius is quartered to the step's length
    when ``ρ < 0.25`` and doubled when ``ρ > 0.75`` on a step that reached it.
    Near a root the steps are Newton steps (quadratic convergence); far from one
    or on a slow manifold (``J_r`` near singular) they are shortened Cauchy/dogleg
    steps that always lower ``q``.

    A point stops when ``q < 1e-8·tol_exact``; when a step fails at ``q <=
    tol_exact`` (round-off floor: a root); when the model predicts a
    reduction below ``1e-8·q`` or the radius shrinks below ``1e-12·(1 + ‖h‖)``
    (a stationary point of ``q`` that is not a root: a slow point); or when
    ``stall = (w, f)``: ``w`` iterations have not lowered ``q`` below ``f``
    times its value ``w`` iterations before.  Newton steps near a root, even a
    degenerate one, divide ``q`` by 4 or more per step; a point that does not
    halve it in 10 is creeping along a slow region (e.g. where a GRU's update
    gates saturate, ``q`` shrinks slowly towards 0 far out) and is reported as
    the slow point it is.

    Parameters
    ----------
    fmap : DynamicalMap
    h, x : ndarray [n_networks, k, n_state], [n_networks, k, n_inputs], float64
    active : ndarray [n_networks, k] of bool
        Points to polish (others, e.g. padding, are left as they are).
    tol_exact : float
    max_polish : int
        Iterations.
    radius : float, default 1.0
        Initial trust radius (Euclidean, in state units).
    stall : tuple (int, float), default (10, 0.5)
        See above.

    Returns
    -------
    h : ndarray [n_networks, k, n_state]
    q : ndarray [n_networks, k]
    n_polish : ndarray [n_networks, k] of int
    converged : ndarray [n_networks, k] of bool
        The point stopped before ``max_polish`` (``active`` points only).
    """
    eye = np.eye(h.shape[-1])

    def residual(h, x):
        r = fmap.f64(tf.constant(h), tf.constant(x)).numpy() - h
        return r, 0.5 * np.sum(r * r, -1)

    h = np.array(h, np.float64)
    r, q = residual(h, x)
    delta = np.full(q.shape, float(radius))
    n_polish = np.zeros(q.shape, int)
    active = active & np.isfinite(q) & (q > tol_exact * 1e-8)
    rows = np.arange(h.shape[0])[:, None]
    window, factor = stall
    q_before = q.copy()  # q ``window`` iterations ago
    for it in range(max_polish):
        if not active.any():
            break
        # Work on the active points only, gathered per network (padded with inactive ones).
        count = active.sum(axis=1)
        cols = np.argsort(~active, axis=1, kind="stable")[:, : count.max()]
        live = np.arange(cols.shape[1])[None] < count[:, None]
        hs, xs, rs, qs, ds = h[rows, cols], x[rows, cols], r[rows, cols], q[rows, cols], delta[rows, cols]
        jac = fmap.jacobians(tf.constant(hs), tf.constant(xs))[1].numpy() - eye
        step, length = _dogleg(jac, rs, ds)
        model = rs + np.einsum("...ij,...j->...i", jac, step)
        predicted = qs - 0.5 * np.sum(model * model, -1)
        trial = hs + step
        r_try, q_try = residual(trial, xs)
        rho = (qs - q_try) / np.maximum(predicted, 1e-300)
        accept = np.isfinite(q_try) & (q_try < qs) & (rho > 1e-4)
        ds = np.where(rho < 0.25, 0.25 * length, np.where((rho > 0.75) & (length >= 0.99 * ds),
                                                          2 * ds, ds))
        qs = np.where(accept, q_try, qs)
        stationary = (predicted <= 1e-8 * qs) | (ds < 1e-12 * (1 + np.linalg.norm(hs, axis=-1)))
        stalled = (~accept & (qs <= tol_exact)) | (stationary & (qs > tol_exact))
        if (it + 1) % window == 0:
            stalled |= (qs > tol_exact) & (qs > factor * q_before[rows, cols])
        p, c = np.broadcast_to(rows, cols.shape)[live], cols[live]
        h[p, c] = np.where(accept[..., None], trial, hs)[live]
        r[p, c] = np.where(accept[..., None], r_try, rs)[live]
        q[p, c], delta[p, c] = qs[live], ds[live]
        n_polish[p, c] += 1
        active[p, c] = (~stalled & (qs > tol_exact * 1e-8))[live]
        if (it + 1) % window == 0:
            q_before = q.copy()
    return h, q, n_polish, ~active
