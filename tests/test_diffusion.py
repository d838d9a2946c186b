"""Diffusion actors (spec 000 §5.2-5.4): the schedule against hand-computed values, log-probs under stored chain
noise against a plain NumPy loop, gradients through every denoising step, the masked auxiliary loss (eq. 33), jit
determinism, vmap over a batch and over per-vehicle parameters, one trace per shape, config validation."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmjax.agents import diffusion

M, K, D = 3, 4, 6  # vehicles, servers, state dim
SMALL = {"time_embed_dim": 8, "time_hidden": 8, "state_hidden": (16, 16), "trunk_hidden": (16, 16)}


def _states(n=4, seed=0):
    return jax.random.normal(jax.random.key(seed), (n, D))


def _continuous(step_noise="none", clip_denoised=False):
    cfg = diffusion.DiffusionConfig(x_clip=1.0, step_noise=step_noise, clip_denoised=clip_denoised, **SMALL)
    return diffusion.ContinuousDiffusionActor(cfg, action_dim=2 * M)


def _discrete(step_noise="none"):
    return diffusion.DiscreteDiffusionActor(diffusion.DiffusionConfig(step_noise=step_noise, **SMALL), M, K)


@functools.cache
def _denoiser_params(x_dim, seed):
    """One jitted init per denoiser shape (eager Flax init is slow on CPU); the chain options share it."""
    chain = diffusion.DiffusionChain(diffusion.DiffusionConfig(**SMALL), x_dim)
    return jax.jit(chain.init)(jax.random.key(seed), jnp.zeros((D,)))


def _init(actor, seed):
    if isinstance(actor, diffusion.ContinuousDiffusionActor):
        return {"denoiser": _denoiser_params(2 * M, seed), "log_std": jnp.full((2 * M,), actor.log_std_init)}
    return {"denoiser": _denoiser_params(M * K, seed)}


# ---------------------------------------------------------------- NumPy reference (float64, one sample at a time)
def _mish(x):
    return x * np.tanh(np.logaddexp(0.0, x))


def _np_params(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)["params"]


def _np_denoiser(p, cfg, x, u, s):
    dense = lambda name, h: h @ p[name]["kernel"] + p[name]["bias"]
    half = cfg.time_embed_dim // 2
    freqs = np.exp(np.arange(half) * -np.log(10000.0) / (half - 1))
    t = np.concatenate([np.sin(u * freqs), np.cos(u * freqs)])
    t = dense("time_1", _mish(dense("time_0", t)))
    h = s
    for i in range(len(cfg.state_hidden)):
        h = dense(f"state_{i}", h)
        h = _mish(h) if i < len(cfg.state_hidden) - 1 else h
    h = np.concatenate([x, t, h])
    for i in range(len(cfg.trunk_hidden)):
        h = _mish(dense(f"trunk_{i}", h))
    return dense("out", h)


def _np_chain(params, cfg, s, x_T, steps):
    """x_0 by the eq. (25) loop, the VP betas written out again (spec §5.2)."""
    U = cfg.num_steps
    beta = [
        1.0 - np.exp(-cfg.beta_min / U - 0.5 * (cfg.beta_max - cfg.beta_min) * (2 * u - 1) / U**2)
        for u in range(1, U + 1)
    ]
    p, x = _np_params(params), np.asarray(x_T, np.float64)
    for u in range(U, 0, -1):
        b = beta[u - 1]
        abar = np.prod([1.0 - bk for bk in beta[:u]])
        abar_prev = abar / (1.0 - b)
        eps = _np_denoiser(p, cfg, x, u, np.asarray(s, np.float64))
        if cfg.clip_denoised:  # GDMOPT: clamp x0_hat, then the DDPM posterior mean
            x0_hat = np.clip((x - np.sqrt(1.0 - abar) * eps) / np.sqrt(abar), -cfg.x_clip, cfg.x_clip)
            x = (b * np.sqrt(abar_prev) * x0_hat + (1.0 - abar_prev) * np.sqrt(1.0 - b) * x) / (1.0 - abar)
        else:  # eq. (25)
            x = (x - b / np.sqrt(1.0 - abar) * eps) / np.sqrt(1.0 - b)
        if steps is not None:
            sigma = np.sqrt(b) if cfg.step_noise == "beta" else np.sqrt(b * (1.0 - abar / (1.0 - b)) / (1.0 - abar))
            x = x + sigma * np.asarray(steps[u - 1], np.float64)
    return x if cfg.x_clip is None else np.clip(x, -cfg.x_clip, cfg.x_clip)


def _noise_i(noise, i):
    return noise.x_T[i], None if noise.steps is None else noise.steps[i]


# ---------------------------------------------------------------- schedule (§5.2)
def test_schedule_matches_hand_computed_values():
    vp = diffusion.make_schedule(diffusion.DiffusionConfig())  # U = 5, b_min 0.1, b_max 10: the spec's table
    np.testing.assert_allclose(vp.betas, [0.19587, 0.45882, 0.63578, 0.75488, 0.83503], atol=1e-5)
    np.testing.assert_allclose(vp.alpha_bars, [0.80413, 0.43518, 0.15850, 0.03885, 0.00641], atol=1e-5)
    np.testing.assert_allclose(
        diffusion.betas(diffusion.DiffusionConfig(num_steps=3)), [0.44196, 0.81425, 0.93817], atol=1e-5
    )
    tiny = diffusion.make_schedule(
        diffusion.DiffusionConfig(num_steps=2, schedule="linear", beta_min=0.1, beta_max=0.5, step_noise="posterior")
    )
    np.testing.assert_allclose(tiny.betas, [0.1, 0.5], rtol=1e-6)
    np.testing.assert_allclose(tiny.alphas, [0.9, 0.5], rtol=1e-6)
    np.testing.assert_allclose(tiny.alpha_bars, [0.9, 0.45], rtol=1e-6)
    np.testing.assert_allclose(tiny.alpha_bars_prev, [1.0, 0.9], rtol=1e-6)
    np.testing.assert_allclose(tiny.posterior_variances, [0.0, 0.5 * 0.1 / 0.55], rtol=1e-6)
    np.testing.assert_allclose(tiny.eps_coefs, [0.1 / np.sqrt(0.1), 0.5 / np.sqrt(0.55)], rtol=1e-6)
    np.testing.assert_allclose(tiny.inv_sqrt_alphas, [1 / np.sqrt(0.9), 1 / np.sqrt(0.5)], rtol=1e-6)
    np.testing.assert_allclose(tiny.step_sigmas, np.sqrt([0.0, 0.5 * 0.1 / 0.55]), rtol=1e-6)
    beta_mode = {"num_steps": 2, "schedule": "linear", "beta_min": 0.1, "beta_max": 0.5}
    np.testing.assert_allclose(
        diffusion.make_schedule(diffusion.DiffusionConfig(**beta_mode, step_noise="beta")).step_sigmas,
        np.sqrt([0.1, 0.5]),
        rtol=1e-6,
    )
    assert not np.any(diffusion.make_schedule(diffusion.DiffusionConfig(**beta_mode)).step_sigmas)  # mean-only
    assert all(a.dtype == np.float32 and a.shape == (2,) for a in tiny)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"schedule": "cosine"}, "schedule"),
        ({"beta_min": 0.0}, "beta_min"),
        ({"beta_min": 2.0, "beta_max": 1.0}, "beta_min"),
        ({"schedule": "linear", "beta_max": 1.0}, "beta_max"),
        ({"step_noise": "ddim"}, "step_noise"),
        ({"x_clip": 0.0}, "x_clip"),
        ({"time_embed_dim": 7}, "time_embed_dim"),
        ({"time_embed_dim": 2}, "time_embed_dim"),
        ({"state_hidden": ()}, "state_hidden"),
        ({"trunk_hidden": (8, 0)}, "trunk_hidden"),
        ({"activation": "gelu"}, "activation"),
        ({"head_gain": -1.0}, "head_gain"),
        ({"num_steps": 2.5}, "num_steps"),
        ({"clip_denoised": True}, "clip_denoised"),
    ],
)
def test_bad_configs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"DiffusionConfig\.{field}"):
        diffusion.DiffusionConfig(**kwargs)


def test_bad_actors_name_the_field():
    with pytest.raises(ValueError, match=r"ContinuousDiffusionActor\.action_dim"):
        diffusion.ContinuousDiffusionActor(action_dim=0)
    with pytest.raises(ValueError, match=r"ContinuousDiffusionActor\.log_std_init"):
        diffusion.ContinuousDiffusionActor(log_std_init=2.0)
    with pytest.raises(ValueError, match=r"DiscreteDiffusionActor\.num_choices"):
        diffusion.DiscreteDiffusionActor(num_agents=2, num_choices=1)
    with pytest.raises(ValueError, match=r"denoising_errors\.norm"):
        _discrete().diffusion_loss(
            {"denoiser": None}, _states(), jnp.zeros((4, M), jnp.int32), jax.random.key(0), norm="huber"
        )


# ---------------------------------------------------------------- log-probs under stored noise (eqs. 26-28)
@pytest.mark.parametrize("step_noise, clip_denoised", [("none", False), ("beta", False), ("none", True)])
def test_continuous_log_prob_matches_numpy_loop(step_noise, clip_denoised):
    actor, s = _continuous(step_noise, clip_denoised), _states()
    old = _init(actor, 1)
    log_prob = jax.jit(actor.log_prob)
    sample = jax.jit(actor.act)(jax.random.key(2), old, s)  # rollout under the old params; noise stored
    assert (sample.noise.steps is None) == (step_noise == "none")
    new = _init(actor, 3)
    new["log_std"] = jnp.linspace(-1.0, 0.5, 2 * M)
    got = log_prob(new, s, sample.noise, sample.raw)
    sigma = np.exp(np.linspace(-1.0, 0.5, 2 * M))
    for i in range(s.shape[0]):
        mu = _np_chain(new["denoiser"], actor.config, s[i], *_noise_i(sample.noise, i))
        z = (np.asarray(sample.raw[i], np.float64) - mu) / sigma
        want = np.sum(-0.5 * z**2 - np.log(sigma) - 0.5 * np.log(2 * np.pi))
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(log_prob(old, s, sample.noise, sample.raw), sample.log_prob, rtol=1e-5, atol=1e-5)
    assert np.all(np.abs(sample.mean) <= 1.0)  # x_0 clamped to [-1, 1] (§9-B5)


def test_discrete_log_prob_and_entropy_match_numpy_loop():
    actor, s = _discrete("beta"), _states()
    sample = jax.jit(actor.act)(jax.random.key(4), _init(actor, 5), s)
    assert sample.choice.shape == (4, M) and sample.choice.dtype == jnp.int32
    new = _init(actor, 6)
    both = jax.jit(lambda p, n, c: (actor.log_prob(p, s, n, c), actor.entropy(p, s, n)))
    got_lp, got_h = both(new, sample.noise, sample.choice)
    for i in range(s.shape[0]):
        logits = _np_chain(new["denoiser"], actor.config, s[i], *_noise_i(sample.noise, i)).reshape(M, K)
        log_p = (
            logits
            - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1, keepdims=True))
            - logits.max(-1, keepdims=True)
        )
        want_lp = np.sum(log_p[np.arange(M), np.asarray(sample.choice[i])])
        want_h = np.mean(-np.sum(np.exp(log_p) * log_p, axis=-1))
        np.testing.assert_allclose(got_lp[i], want_lp, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(got_h[i], want_h, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- gradients through every step (§5.2)
def test_gradients_flow_through_every_denoising_step():
    actor, s = _discrete("beta"), _states(1)[0]
    params = _init(actor, 7)
    noise = actor.sample_noise(jax.random.key(8))
    direction = jax.random.normal(jax.random.key(9), (M * K,))
    mean_only, posterior = _discrete("none"), _discrete("posterior")
    steps = jnp.arange(actor.config.num_steps)

    @jax.jit
    def probe(params, noise):
        run = lambda p, n: actor.chain.run(p["denoiser"], s, n)
        grads = jax.grad(lambda n: run(params, n) @ direction)(noise)
        bump = lambda k: run(params, noise._replace(steps=noise.steps.at[k].add(0.5))) - run(params, noise)
        changes = jnp.max(jnp.abs(jax.vmap(bump)(steps)), axis=-1)  # [U]
        g_mean_only = jax.grad(lambda p: mean_only.chain.run(p["denoiser"], s, noise._replace(steps=None)) @ direction)
        g_posterior = jax.grad(lambda n: posterior.chain.run(params["denoiser"], s, n) @ direction)
        return grads, changes, g_mean_only(params), g_posterior(noise).steps

    grads, changes, g, steps_grad = probe(params, noise)
    per_step = np.abs(np.asarray(grads.steps)).sum(-1)  # [U]: d x_0 / d z_u reaches back through steps u..1
    assert per_step.shape == (actor.config.num_steps,) and np.all(per_step > 0)
    assert np.abs(np.asarray(grads.x_T)).sum() > 0
    assert np.all(np.asarray(changes) > 1e-4)  # perturbing the stored noise of any step k changes x_0
    # the spec's mean-only chain: every denoiser layer, time MLP included, gets a gradient
    assert all(float(jnp.abs(leaf).sum()) > 0 for leaf in jax.tree.leaves(g))
    # sigma_1 = 0 in the posterior chain: z_1 is unused, every earlier step still reaches x_0
    per_step = np.abs(np.asarray(steps_grad)).sum(-1)
    assert per_step[0] == 0 and np.all(per_step[1:] > 0)


def test_clip_denoised_equals_eq25_when_nothing_is_clamped():
    wide = dict(x_clip=1e6, **SMALL)
    plain = diffusion.DiscreteDiffusionActor(diffusion.DiffusionConfig(**wide), M, K)
    gdmopt = diffusion.DiscreteDiffusionActor(diffusion.DiffusionConfig(clip_denoised=True, **wide), M, K)
    s = _states()
    params = _init(plain, 22)
    noise = plain.sample_noise(jax.random.key(23), (4,))
    both = jax.jit(lambda p, n: (gdmopt.logits(p, s, n), plain.logits(p, s, n)))
    np.testing.assert_allclose(*both(params, noise), rtol=1e-4, atol=1e-4)


def test_ppo_gradient_of_continuous_log_prob():
    actor, s = _continuous(), _states(32)  # most of x_0 is clamped at init (zero gradient there), not all
    params = _init(actor, 10)
    sample = jax.jit(actor.act)(jax.random.key(11), params, s)
    g = jax.jit(jax.grad(lambda p: jnp.sum(actor.log_prob(p, s, sample.noise, sample.raw))))(params)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(g))
    assert float(jnp.abs(g["log_std"]).sum()) > 0 and float(jnp.abs(g["denoiser"]["params"]["out"]["kernel"]).sum()) > 0
    np.testing.assert_allclose(actor.entropy(params), _gaussian_entropy(actor, params, s, sample.noise), rtol=1e-6)


def _gaussian_entropy(actor, params, s, noise):
    return actor.distribution(params, s, noise).entropy()[0]


# ---------------------------------------------------------------- auxiliary diffusion loss (eq. 33)
def test_aux_loss_is_masked_by_weight():
    actor, s = _discrete(), _states(6)
    params = _init(actor, 12)
    choice = jax.random.randint(jax.random.key(13), (6, M), 0, K)
    key = jax.random.key(14)
    x_0 = actor.one_hot(choice)
    assert x_0.shape == (6, M * K) and np.all(np.asarray(x_0).reshape(6, M, K).sum(-1) == 1)
    noise = diffusion.sample_loss_noise(key, actor.config.num_steps, x_0.shape)
    assert noise.u.shape == (6,) and int(noise.u.min()) >= 1 and int(noise.u.max()) <= actor.config.num_steps
    weight = jnp.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    other = choice.at[1].set((choice[1] + 1) % K)  # a masked-out sample's action does not matter

    @jax.jit
    def losses(params):
        errors = {
            norm: diffusion.denoising_errors(actor.chain, params["denoiser"], s, x_0, noise, norm)
            for norm in ("l1", "l2")
        }
        zero_mask = jax.value_and_grad(lambda p: actor.diffusion_loss(p, s, choice, key, jnp.zeros(6)))(params)
        return (
            errors,
            actor.diffusion_loss(params, s, choice, key, weight),
            actor.diffusion_loss(params, s, choice, key),
            actor.diffusion_loss(params, s, other, key, weight),
            zero_mask,
        )

    all_errors, loss, unweighted, loss_other, (value, grads) = losses(params)
    for norm, errors in all_errors.items():
        p = _np_params(params["denoiser"])
        for i in range(6):
            abar = float(actor.chain.schedule.alpha_bars[int(noise.u[i]) - 1])
            x_u = np.sqrt(abar) * np.asarray(x_0[i], np.float64) + np.sqrt(1 - abar) * np.asarray(noise.eps[i])
            r = _np_denoiser(p, actor.config, x_u, int(noise.u[i]), np.asarray(s[i], np.float64)) - noise.eps[i]
            np.testing.assert_allclose(errors[i], np.mean(np.abs(r) if norm == "l1" else r**2), rtol=1e-4)
    errors = np.asarray(all_errors["l1"])  # the spec's L1 (eq. 33 [REC])
    np.testing.assert_allclose(loss, np.mean(errors[[0, 2, 5]]), rtol=1e-5)
    np.testing.assert_allclose(unweighted, np.mean(errors), rtol=1e-5)
    np.testing.assert_allclose(loss_other, loss, rtol=1e-6)
    assert float(value) == 0.0 and all(not np.any(np.asarray(g)) for g in jax.tree.leaves(grads))


# ---------------------------------------------------------------- jit, vmap, traces
def test_jit_determinism_and_vmap():
    actor, s = _discrete(), _states(5)
    params = _init(actor, 15)
    act = jax.jit(actor.act)
    a, b = act(jax.random.key(16), params, s), act(jax.random.key(16), params, s)
    chex.assert_trees_all_equal(a, b)
    c = act(jax.random.key(17), params, s)
    assert not np.array_equal(np.asarray(a.noise.x_T), np.asarray(c.noise.x_T))
    # vmap over the batch of states = the batched call
    single = jax.jit(jax.vmap(lambda si, ni, ci: actor.log_prob(params, si, diffusion.ChainNoise(ni, None), ci)))
    np.testing.assert_allclose(single(s, a.noise.x_T, a.choice), a.log_prob, rtol=1e-5, atol=1e-5)
    # vmap over per-vehicle parameters stacked on a leading axis (decentralised actors)
    cont = _continuous()
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[_init(cont, 18 + v) for v in range(M)])
    keys = jax.random.split(jax.random.key(19), M)
    per_vehicle = jax.jit(jax.vmap(cont.act, in_axes=(0, 0, None)))(keys, stacked, s)
    assert per_vehicle.raw.shape == (M, 5, 2 * M) and per_vehicle.log_prob.shape == (M, 5)
    again = jax.jit(jax.vmap(cont.log_prob, in_axes=(0, None, 0, 0)))(stacked, s, per_vehicle.noise, per_vehicle.raw)
    np.testing.assert_allclose(again, per_vehicle.log_prob, rtol=1e-5, atol=1e-5)


def test_jitted_log_prob_traces_once():
    actor, s = _continuous("beta"), _states()
    params = _init(actor, 20)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def log_prob(p, states, noise, raw):
        return actor.log_prob(p, states, noise, raw)

    act = jax.jit(actor.act)
    for seed in range(3):
        sample = act(jax.random.key(21 + seed), params, s)
        moved = jax.tree.map(functools.partial(jnp.add, 0.01 * seed), params)
        out = log_prob(moved, s + seed, sample.noise, sample.raw)
        assert out.shape == (4,) and bool(jnp.all(jnp.isfinite(out)))


def test_perturbation_action_mapping():
    raw = jnp.array([[-1.0, -1.0, 0.0, 0.0, 2.0, 0.5]])  # [r1, th1, r2, th2, r3, th3]
    out = diffusion.perturbation_action(raw, r_max=0.001)
    np.testing.assert_allclose(out["radius"], [[0.0, 0.0005, 0.001]], rtol=1e-6)
    np.testing.assert_allclose(out["angle"], [[0.0, np.pi, 1.5 * np.pi]], rtol=1e-6)
