"""Type aliases of the public signatures (PEP 484, NumPy's ``numpy.typing``)."""

from __future__ import annotations

from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ArrayLike", "NDArray", "FloatArray", "Loss"]

#: a float32 or float64 array (fastloss keeps the input's precision)
FloatArray = NDArray[np.floating[Any]]
#: a loss: a NumPy scalar of the computing dtype, or a vector for reduction="none"
Loss = Union[np.floating[Any], FloatArray]
