"""Progress bars of long work: tqdm's, a widget in JupyterLab and text in a terminal. In the notebooks' kernels of
`lai run` (:data:`TEXT_BARS_ENV` set) they are text on the notebook's stderr, which `lai run` passes on to its
terminal: a widget would stay inside the executed notebook, and the terminal would show nothing for minutes."""
from __future__ import annotations

import os
import sys

# "0": the stages show no progress bars or per-epoch lines unless a call asks for them (the notebooks under the tests)
PROGRESS_ENV = "LAI_PROGRESS"
TEXT_BARS_ENV = "LAI_TEXT_PROGRESS"  # "1": bars as text on stderr (set by lai run for its kernels)
TEXT_BAR_INTERVAL = 2.0  # seconds between updates of a text bar streamed through a kernel


def tqdm(*args, **kwargs):
    """A progress bar, with ``tqdm.auto.tqdm``'s arguments."""
    if os.environ.get(TEXT_BARS_ENV) == "1":
        from tqdm.std import tqdm as text

        return text(*args, **{"file": sys.stderr, "mininterval": TEXT_BAR_INTERVAL, "ncols": 100, **kwargs})
    from tqdm.auto import tqdm as auto

    return auto(*args, **kwargs)
