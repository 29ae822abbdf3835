"""The import path ``testfleet.services``, kept for the projects that use it.

It is the same module as :mod:`testfleet.isolation.services`,
where the code is: any name, and any patch
of one, is shared.
"""

from __future__ import annotations

import sys

from testfleet.isolation import services as _module

sys.modules[__name__] = _module
