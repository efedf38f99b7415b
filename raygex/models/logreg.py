"""The seed paper's simplest baseline: multinomial logistic regression on all input genes."""

from __future__ import annotations

from torch import Tensor, nn

from raygex.models.registry import register_model


class LogisticRegression(nn.Module):
    r"""A single linear map to class logits: :math:`\mathrm{logits} = W x + b`.

    Fitted as the field fits it (:mod:`raygex.training.convex`): full-batch L-BFGS to the optimum of the
    L2-penalised loss, ``C`` (scikit-learn's inverse regularisation strength) the only searched parameter. A
    streamed study, whose rows never sit in one process, trains it by minibatch Adam on the same penalty.

    Shapes:
        input ``(batch, n_genes)`` float32; output logits ``(batch, n_classes)``.
    """

    def __init__(self, n_genes: int, n_classes: int):
        super().__init__()
        if n_genes < 1 or n_classes < 2:
            raise ValueError(f"LogisticRegression needs n_genes >= 1 and n_classes >= 2, but got {n_genes} and "
                             f"{n_classes}")
        self.n_genes, self.n_classes = n_genes, n_classes
        self.linear = nn.Linear(n_genes, n_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.linear.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


def build_logreg(hparams: dict, n_genes: int, n_classes: int, graph=None) -> LogisticRegression:
    """``C`` sets the fit's penalty, not the network: the builder needs only the shapes."""
    return LogisticRegression(n_genes, n_classes)


register_model("lr", build_logreg, hyperparameters={"C": 1.0}, solver="lbfgs")(LogisticRegression)
