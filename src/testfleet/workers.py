"""The import path ``testfleet.workers``, kept for the projects that use it.

It is the same module as :mod:`testfleet.core.workers`,
where the code is: any name, and any patch
of one, is shared.
"""

from __future__ import annotations

import sys

from testfleet.core import workers as _module

sys.modules[__name__] = _module
