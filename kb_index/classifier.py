"""An article classifier for knowledge bases whose articles have many phrasings.

When every article comes with several ways of asking for it, a softmax regression trained on those
phrasings (encoded as questions) separates neighbouring articles better than the nearest phrasing does, and
its probability says how sure it is. Its probability is mixed into the article score; knowledge bases with
one or two phrasings per article, or very many articles, are searched without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["ArticleClassifier"]


class ArticleClassifier:
    """Softmax regression from a question vector to the probability of each article."""

    FILE = "classifier.npz"

    def __init__(self, weights: np.ndarray, bias: np.ndarray) -> None:
        self._weights = np.ascontiguousarray(weights, dtype=np.float32)  # (dimension, articles)
        self._bias = np.ascontiguousarray(bias, dtype=np.float32)

    @classmethod
    def train(
        cls,
        vectors: np.ndarray,
        labels: np.ndarray,
        articles: int,
        *,
        regularization: float = 100.0,
        iterations: int = 200,
        seed: int = 0,
    ) -> ArticleClassifier:
        """Fit on phrasing vectors labelled with their article number (L-BFGS, weak L2 penalty).

        ``regularization`` has the meaning of scikit-learn's ``C``: larger means a weaker penalty.
        """
        import torch

        # Small matrices: one thread is many times faster than several fighting over a busy machine.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return cls._fit(vectors, labels, articles, regularization, iterations, seed)
        finally:
            torch.set_num_threads(threads)

    @classmethod
    def _fit(
        cls, vectors: np.ndarray, labels: np.ndarray, articles: int, regularization: float, iterations: int, seed: int
    ) -> ArticleClassifier:
        import torch

        torch.manual_seed(seed)
        x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        y = torch.from_numpy(labels.astype(np.int64))
        weights = torch.zeros((x.shape[1], articles), requires_grad=True)
        bias = torch.zeros(articles, requires_grad=True)
        penalty = 1.0 / (2.0 * regularization * max(len(x), 1))
        optimizer = torch.optim.LBFGS(
            [weights, bias], lr=1.0, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(x @ weights + bias, y) + penalty * (weights**2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return cls(weights.detach().numpy(), bias.detach().numpy())

    def probabilities(self, query: np.ndarray) -> np.ndarray:
        logits = query.astype(np.float32) @ self._weights + self._bias
        logits -= logits.max()
        exp = np.exp(logits)
        return exp / exp.sum()

    def save(self, folder: Path) -> None:
        np.savez(folder / self.FILE, weights=self._weights, bias=self._bias)

    @classmethod
    def load(cls, folder: Path) -> ArticleClassifier | None:
        path = folder / cls.FILE
        if not path.is_file():
            return None
        with np.load(path) as data:
            return cls(data["weights"], data["bias"])
