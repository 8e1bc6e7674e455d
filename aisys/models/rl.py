"""A tiny reinforcement-learning agent: REINFORCE (Williams 1992) on a corridor shipped with aisys.

The corridor has ``length`` cells; the agent starts in cell 0 and can step left or right. Reaching the
last cell ends the episode with reward +1; every step costs ``step_penalty``, and an episode is cut off
after ``max_steps``. The policy is an MLP from the one-hot cell to action logits; the gradient of
E[return] is estimated as Σ_t ∇log π(a_t|s_t)·(G_t − b), with a batch-mean baseline b.
"""
from __future__ import annotations

import numpy as np

from ..framework import nn, optim
from ..framework.nn import functional as F
from ..framework.tensor import Tensor, no_grad
from .progress import ProgressBar

__all__ = ["Corridor", "PolicyNet", "reinforce", "greedy_return"]

LEFT, RIGHT = 0, 1


class Corridor:
    """A 1-D corridor with the Gymnasium-style API:
    ``obs, info = env.reset(seed=...)``; ``obs, reward, terminated, truncated, info = env.step(action)``."""

    n_actions = 2

    def __init__(self, length: int = 8, max_steps: int = 20, step_penalty: float = 0.01):
        if length < 2:
            raise ValueError(f"Corridor: length={length} must be at least 2 (a start and a goal)")
        if max_steps < 1:
            raise ValueError(f"Corridor: max_steps={max_steps} must be positive")
        self.length, self.max_steps, self.step_penalty = length, max_steps, step_penalty
        self.pos = 0
        self.t = 0

    @property
    def n_states(self) -> int:
        return self.length

    def _obs(self) -> np.ndarray:
        o = np.zeros(self.length, np.float32)
        o[self.pos] = 1.0
        return o

    def reset(self, seed: int | None = None):
        self.pos, self.t = 0, 0
        return self._obs(), {}

    def step(self, action: int):
        if action not in (LEFT, RIGHT):
            raise ValueError(f"Corridor.step: action={action!r} must be 0 (left) or 1 (right)")
        self.t += 1
        self.pos = min(max(self.pos + (1 if action == RIGHT else -1), 0), self.length - 1)
        terminated = self.pos == self.length - 1
        reward = (1.0 if terminated else 0.0) - self.step_penalty
        truncated = not terminated and self.t >= self.max_steps
        return self._obs(), reward, terminated, truncated, {}

    def __repr__(self) -> str:
        cells = ["A" if i == self.pos else ("G" if i == self.length - 1 else ".") for i in range(self.length)]
        return "Corridor[" + "".join(cells) + "]"


class PolicyNet(nn.Module):
    """π(a|s): observation -> action logits."""

    def __init__(self, n_states: int, n_actions: int = 2, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_states, hidden), nn.Tanh(), nn.Linear(hidden, n_actions))

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs)


def _discounted(rewards: list[float], gamma: float) -> np.ndarray:
    out, g = np.zeros(len(rewards), np.float32), 0.0
    for i in reversed(range(len(rewards))):
        g = rewards[i] + gamma * g
        out[i] = g
    return out


def reinforce(env: Corridor, policy: nn.Module, episodes: int = 200, lr: float = 1e-2, gamma: float = 0.99,
              batch_episodes: int = 4, seed: int = 0, progress: bool = True) -> list[float]:
    """Train ``policy`` with REINFORCE; returns each episode's total reward.

    Every ``batch_episodes`` episodes make one Adam step. The baseline is the batch's mean discounted
    return and advantages are divided by their std (a standard variance reduction that keeps the step
    size sensible whatever the reward scale)."""
    rng = np.random.default_rng(seed)
    opt = optim.Adam(policy.parameters(), lr=lr)
    returns = []
    batch = []                                   # (states, actions, discounted returns) per episode
    with ProgressBar(episodes, desc="reinforce", enabled=progress) as bar:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            states, actions, rewards = [], [], []
            done = False
            while not done:
                with no_grad():
                    logits = policy(Tensor(obs[None]))._data[0].astype(np.float64)
                p = np.exp(logits - logits.max())
                a = int(rng.choice(len(p), p=p / p.sum()))
                states.append(obs)
                actions.append(a)
                obs, r, terminated, truncated, _ = env.step(a)
                rewards.append(r)
                done = terminated or truncated
            batch.append((states, actions, _discounted(rewards, gamma)))
            returns.append(float(sum(rewards)))
            bar.update(ret=returns[-1])
            if len(batch) == batch_episodes or ep == episodes - 1:
                S = np.concatenate([np.stack(s) for s, _, _ in batch])
                A = np.concatenate([np.asarray(a, np.int64) for _, a, _ in batch])
                G = np.concatenate([g for _, _, g in batch])
                adv = (G - G.mean()) / (G.std() + 1e-8)
                logp = F.log_softmax(policy(Tensor(S)), -1)
                picked = logp.gather(1, Tensor(A[:, None])).reshape(-1)
                loss = -(picked * Tensor(adv.astype(np.float32))).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                batch = []
    return returns


def greedy_return(env: Corridor, policy: nn.Module) -> float:
    """Total reward of one episode taking the most likely action every step."""
    obs, _ = env.reset()
    total, done = 0.0, False
    with no_grad():
        while not done:
            a = int(policy(Tensor(obs[None]))._data[0].argmax())
            obs, r, terminated, truncated, _ = env.step(a)
            total += r
            done = terminated or truncated
    return total
