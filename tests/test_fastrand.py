"""The counter-hash generator: a pure function of the key, with the right distributions."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from vmjax.core import fastrand


def test_same_key_same_numbers_and_keys_differ():
    k = jax.random.key(7)
    np.testing.assert_array_equal(fastrand.uniform(k, (1000,)), fastrand.uniform(k, (1000,)))
    a, b = jax.random.split(k)
    assert not np.array_equal(fastrand.uniform(a, (1000,)), fastrand.uniform(b, (1000,)))
    batched = jax.jit(jax.vmap(lambda key: fastrand.normal(key, (5,))))(jax.random.split(k, 3))
    for i, key in enumerate(jax.random.split(k, 3)):  # compiled vs eager: equal up to float contraction
        np.testing.assert_allclose(batched[i], fastrand.normal(key, (5,)), rtol=1e-5)


def test_uniform_distribution():
    u = np.asarray(fastrand.uniform(jax.random.key(0), (200_000,)))
    assert u.min() > 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    assert stats.chisquare(counts).pvalue > 1e-3
    scaled = np.asarray(fastrand.uniform(jax.random.key(1), (10_000,), 12.0, 20.0))
    assert scaled.min() >= 12.0 and scaled.max() < 20.0


def test_normal_and_exponential_distributions():
    z = np.asarray(fastrand.normal(jax.random.key(2), (200_000,)))
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    e = np.asarray(fastrand.exponential(jax.random.key(3), (200_000,)))
    assert e.min() > 0 and stats.kstest(e, "expon").pvalue > 1e-3


def test_box_muller_pair_is_two_independent_normals():
    z0, z1 = (np.asarray(z) for z in fastrand.normal_pair(jax.random.key(8), (200_000,)))
    for z in (z0, z1):
        assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z0, z1)[0, 1]) < 0.01
    assert stats.kstest(z0**2 + z1**2, "chi2", args=(2,)).pvalue > 1e-3
    x = jnp.linspace(-1.0, 1.0, 10_001)
    np.testing.assert_allclose(fastrand._sin_pi(x), np.sin(np.pi * np.asarray(x, np.float64)), atol=2e-6)


def test_streams_of_neighbouring_keys_are_uncorrelated():
    keys = jax.random.split(jax.random.key(4), 50)
    draws = np.asarray(jax.vmap(lambda k: fastrand.uniform(k, (4000,)))(keys))
    corr = np.corrcoef(draws)
    off_diagonal = corr[~np.eye(50, dtype=bool)]
    assert np.abs(off_diagonal).max() < 0.08  # |r| ~ N(0, 1/4000): 4.5 sigma over 2450 pairs
    # hand-made keys one bit apart in either word do not give permuted or shifted copies of one stream
    data = jax.random.key_data(keys[0])
    for flip in ([1, 0], [0, 1], [2**31, 0]):
        flipped = jax.random.wrap_key_data(data ^ jnp.array(flip, jnp.uint32))
        a, b = np.asarray(fastrand.bits(keys[0], (1000,))), np.asarray(fastrand.bits(flipped, (1000,)))
        assert len(np.intersect1d(a, b)) < 3


def test_bernoulli_and_randint():
    x = np.asarray(fastrand.bernoulli(jax.random.key(5), 0.3, (100_000,)))
    assert abs(x.mean() - 0.3) < 0.01
    r = np.asarray(fastrand.randint(jax.random.key(6), (100_000,), 1, 4))
    assert set(np.unique(r)) == {1, 2, 3}
    assert stats.chisquare(np.bincount(r)[1:]).pvalue > 1e-3
