"""fastloss: fast C++ kernels for the multiclass SVM and softmax cross-entropy losses.

Drop-in replacements for the NumPy code of CS231n's linear classifiers, and a small
kernel library for scikit-learn, PyTorch and JAX users on a CPU. See ``show_config()``.
"""

from . import features
from ._config import build_info, show_config
from .losses import (
    log_softmax,
    multiclass_hinge,
    softmax,
    softmax_cross_entropy,
    softmax_loss,
    svm_loss,
)
from .linear import (
    linear_loss,
    softmax_loss_naive,
    softmax_loss_vectorized,
    svm_loss_naive,
    svm_loss_vectorized,
)
from .optim import SGD, random_search, sgd_step
from .gradcheck import check_gradient, grad_check_sparse, numerical_gradient

__version__ = build_info()["version"]

__all__ = [
    "__version__",
    "build_info",
    "show_config",
    "multiclass_hinge",
    "softmax_cross_entropy",
    "softmax",
    "log_softmax",
    "svm_loss",
    "softmax_loss",
    "linear_loss",
    "svm_loss_naive",
    "svm_loss_vectorized",
    "softmax_loss_naive",
    "softmax_loss_vectorized",
    "SGD",
    "sgd_step",
    "random_search",
    "numerical_gradient",
    "grad_check_sparse",
    "check_gradient",
]
