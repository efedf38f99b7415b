"""The trials' optimiser: ``torch.optim.Adam``'s update, computed the way torch computes it, without ``torch.optim``.

Every ``torch.optim`` optimiser imports ``torch._dynamo`` the first time it is built or stepped (its methods are
wrapped to keep ``torch.compile`` out of them), and that import takes ~1.5 s of CPU in each fresh process: every
trial worker, every evaluation task, every export retraining. raygex never compiles a trial, so this class does
the same arithmetic as torch's default (single-tensor) Adam path with L2 weight decay added to the gradient, the
bias-corrected moments and ``eps`` outside the square root, and saves and loads its state in
``torch.optim.Adam.state_dict()``'s layout, so checkpoints move between the two. tests/test_optimiser.py checks
the parameters against ``torch.optim.Adam`` bit for bit, step by step, and the state in both directions.
"""

from __future__ import annotations

import torch

# torch.optim.Adam's param_group keys beside lr, betas, eps and weight_decay: the options raygex never sets.
_TORCH_DEFAULTS = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                   "differentiable": False, "fused": None, "decoupled_weight_decay": False}


def _step_dtype() -> torch.dtype:
    # torch keeps Adam's step count as a CPU tensor of the default scalar dtype
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Adam:
    """Adam over ``params`` (one parameter group) with learning rate ``lr`` and L2 ``weight_decay``."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.weight_decay, self.betas, self.eps = float(lr), float(weight_decay), tuple(betas), float(eps)
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.params:
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for param, state in zip(self.params, self.state):
            if param.grad is None:
                continue
            grad = param.grad
            if grad.is_sparse:
                raise RuntimeError("Adam does not support sparse gradients")
            if not state:
                state["step"] = torch.tensor(0.0, dtype=_step_dtype())
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            state["step"] += 1
            if self.weight_decay != 0:
                grad = grad.add(param, alpha=self.weight_decay)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = state["step"].item()
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-(self.lr / bias_correction1))

    def state_dict(self) -> dict:
        """``torch.optim.Adam.state_dict()``'s layout, with copies of the moments (later steps do not change it)."""
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay,
                 **_TORCH_DEFAULTS, "params": list(range(len(self.params)))}
        return {"state": {i: {k: v.detach().clone() for k, v in s.items()} for i, s in enumerate(self.state) if s},
                "param_groups": [group]}

    def load_state_dict(self, saved: dict) -> None:
        """Continue from a state saved by this class or by ``torch.optim.Adam`` over the same parameters."""
        groups = saved["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            saved_count = sum(len(g["params"]) for g in groups)
            raise ValueError(f"the saved optimiser state is for {saved_count} parameters in {len(groups)} "
                             f"group{'s' * (len(groups) != 1)}, but this model has {len(self.params)} in one")
        group = groups[0]
        for key in ("amsgrad", "maximize", "decoupled_weight_decay"):
            if group.get(key):
                raise ValueError(f"the saved optimiser state uses Adam's {key}, which raygex's Adam does not")
        self.lr, self.weight_decay = float(group["lr"]), float(group["weight_decay"])
        self.betas, self.eps = tuple(group["betas"]), float(group["eps"])
        self.state = [{} for _ in self.params]
        for index, saved_state in saved["state"].items():
            position = group["params"].index(index)
            param = self.params[position]
            self.state[position] = {
                "step": torch.as_tensor(saved_state["step"], dtype=_step_dtype(), device="cpu").clone(),
                "exp_avg": saved_state["exp_avg"].to(device=param.device, dtype=param.dtype, copy=True),
                "exp_avg_sq": saved_state["exp_avg_sq"].to(device=param.device, dtype=param.dtype, copy=True)}
